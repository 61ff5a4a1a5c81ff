"""load_photo / find_face: every mode, format, size and bad input."""
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from course_utils.data.crops import BAD_BOX, GRAYSCALE, OK, TOO_LARGE, UNREADABLE, crop_faces, load_face_crop
from course_utils.photo import DEFAULT_MAX_SIDE, MIN_SIDE, find_face, load_photo


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pixel(image: Image.Image, xy=(0, 0)) -> np.ndarray:
    return np.asarray(image)[xy[1], xy[0]].astype(int)


# ---------------------------------------------------------------- modes

def test_l_png_becomes_grey_rgb():
    image = load_photo(encoded(Image.new("L", (16, 16), 100), "PNG"))
    assert image.mode == "RGB" and image.size == (16, 16)
    assert pixel(image).tolist() == [100, 100, 100]


def test_one_bit_png_becomes_white():
    image = load_photo(encoded(Image.new("1", (16, 16), 1), "PNG"))
    assert pixel(image).tolist() == [255, 255, 255]


def test_la_transparent_and_half_transparent_pixels_composite_on_white():
    source = Image.new("LA", (16, 16), (0, 0))  # black, fully transparent
    source.putpixel((1, 1), (0, 128))  # black, half opaque
    image = load_photo(encoded(source, "PNG"))
    assert pixel(image).tolist() == [255, 255, 255]
    assert np.allclose(pixel(image, (1, 1)), 127, atol=2)


def test_rgba_hidden_colour_under_transparency_is_not_shown():
    source = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    source.putpixel((2, 3), (255, 0, 0, 255))
    image = load_photo(encoded(source, "PNG"))
    assert pixel(image).tolist() == [255, 255, 255]
    assert pixel(image, (2, 3)).tolist() == [255, 0, 0]


def test_palette_png_uses_its_palette():
    source = Image.new("P", (16, 16), 1)
    source.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image = load_photo(encoded(source, "PNG"))
    assert pixel(image).tolist() == [10, 200, 30]


def test_palette_png_with_transparency_index_composites_on_white():
    source = Image.new("P", (16, 16), 0)
    source.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    source.putpixel((5, 5), 1)
    image = load_photo(encoded(source, "PNG", transparency=0))
    assert pixel(image).tolist() == [255, 255, 255]
    assert pixel(image, (5, 5)).tolist() == [10, 200, 30]


def test_cmyk_jpeg_becomes_rgb():
    source = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    image = load_photo(encoded(source, "JPEG", quality=95))
    assert image.mode == "RGB"
    assert np.allclose(pixel(image, (8, 8)), [255, 0, 0], atol=12)


def test_sixteen_bit_png_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    source = Image.fromarray(ramp)
    assert source.mode == "I;16"
    image = load_photo(encoded(source, "PNG"))
    row = np.asarray(image)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) > 0), "a ramp must stay a ramp, not clip to white"
    assert abs(row[8] - round(ramp[0, 8] / 257)) <= 1


def test_32_bit_integer_image_with_16_bit_values_is_scaled():
    source = Image.fromarray(np.full((16, 16), 32896, dtype=np.int32))
    assert source.mode == "I"
    assert pixel(load_photo(source)).tolist() == [128, 128, 128]


def test_float_image_in_unit_range_is_scaled():
    source = Image.fromarray(np.full((16, 16), 0.5, dtype=np.float32))
    assert source.mode == "F"
    assert pixel(load_photo(source)).tolist() == [128, 128, 128]


def test_float_tiff_file_loads():
    values = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    image = load_photo(encoded(Image.fromarray(values), "TIFF"))
    grey = np.asarray(image)[..., 0]
    assert grey.min() == 0 and grey.max() == 255


# ---------------------------------------------------------------- formats and sources

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_common_formats(fmt):
    source = Image.new("RGB", (32, 24), (40, 120, 200))
    image = load_photo(encoded(source, fmt, quality=95) if fmt != "PNG" else encoded(source, fmt))
    assert image.mode == "RGB" and image.size == (32, 24)
    assert np.allclose(pixel(image, (10, 10)), [40, 120, 200], atol=6)


def test_path_str_and_pathlib(tmp_path):
    path = tmp_path / "face.png"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(path)
    assert pixel(load_photo(path)).tolist() == [1, 2, 3]
    assert pixel(load_photo(str(path))).tolist() == [1, 2, 3]


def test_bytearray_memoryview_and_file_object():
    data = encoded(Image.new("RGB", (20, 20), (9, 8, 7)), "PNG")
    for source in (bytearray(data), memoryview(data), io.BytesIO(data)):
        assert pixel(load_photo(source)).tolist() == [9, 8, 7]


def test_pil_input_is_not_modified():
    source = Image.new("RGBA", (3000, 20), (5, 6, 7, 255))
    image = load_photo(source)
    assert image.mode == "RGB" and image.size == (DEFAULT_MAX_SIDE, 14)
    assert source.mode == "RGBA" and source.size == (3000, 20)


def test_uint8_array_input():
    array = np.zeros((20, 30, 3), dtype=np.uint8)
    array[..., 1] = 77
    assert pixel(load_photo(array)).tolist() == [0, 77, 0]


def test_exif_orientation_6_rotates_clockwise():
    source = Image.new("RGB", (40, 20), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 20, 20))  # red left half
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    image = load_photo(encoded(source, "JPEG", quality=95, exif=exif))
    assert image.size == (20, 40)
    assert np.allclose(pixel(image, (10, 5)), [255, 0, 0], atol=20), "left half must end up on top"
    assert np.allclose(pixel(image, (10, 35)), [0, 0, 255], atol=20)


# ---------------------------------------------------------------- sizes

def test_very_large_jpeg_is_decoded_small_and_fast():
    # 12000x9000 = 108 MP, above Pillow's bomb-warning threshold; built in greyscale to keep memory low.
    data = encoded(Image.new("L", (12000, 9000), 90), "JPEG", quality=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning leaks out
        image = load_photo(data)
    assert image.size == (DEFAULT_MAX_SIDE, 1536)
    assert np.allclose(pixel(image, (100, 100)), 90, atol=3)


def test_large_png_is_shrunk_to_max_side():
    image = load_photo(encoded(Image.new("RGB", (3000, 1000), (50, 60, 70)), "PNG"), max_side=600)
    assert image.size == (600, 200)


def test_decompression_bomb_gives_clear_value_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encoded(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ValueError, match="too large to decode safely"):
        load_photo(data)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (MIN_SIDE - 1, 100)])
def test_tiny_images_are_refused(size):
    with pytest.raises(ValueError, match=rf"{size[0]}x{size[1]} pixels"):
        load_photo(encoded(Image.new("RGB", size), "PNG"))


def test_small_image_is_upscaled_with_a_warning():
    with pytest.warns(UserWarning, match="upscaling"):
        face = find_face(Image.new("RGB", (MIN_SIDE, MIN_SIDE), (30, 40, 50)), size=64, center=True).face
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8
    assert np.allclose(face, [30, 40, 50], atol=1)


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize(
    "source, message",
    [
        (b"hello, this is not an image", "not an image format"),
        (b"", "empty"),
        (io.BytesIO(b""), "empty"),
        (None, "got NoneType"),
        (42, "got int"),
        (3.5, "got float"),
        (np.zeros((10, 10, 3), dtype=np.float32), "uint8"),
    ],
)
def test_bad_inputs_give_value_errors(source, message):
    with pytest.raises(ValueError, match=message):
        load_photo(source)


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    data = encoded(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ValueError, match="could not decode"):
        load_photo(data[: len(data) // 2])


def test_missing_file_and_directory_name_the_path(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ValueError, match="no file at .*nope.jpg"):
        load_photo(missing)
    with pytest.raises(ValueError, match="is a directory"):
        load_photo(tmp_path)


def test_text_file_on_disk_and_text_mode_handle(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("just some notes")
    with pytest.raises(ValueError, match="notes.jpg' is not an image"):
        load_photo(path)
    with open(path) as handle, pytest.raises(ValueError, match="binary mode"):
        load_photo(handle)


# ---------------------------------------------------------------- find_face

def scene() -> Image.Image:
    """200x100 grey photo with a red 40x40 'face' at (120, 20)-(160, 60)."""
    image = Image.new("RGB", (200, 100), (128, 128, 128))
    image.paste((255, 0, 0), (120, 20, 160, 60))
    return image


def test_find_face_with_box_and_no_margin_is_the_face():
    face = find_face(scene(), box=(120, 20, 160, 60), size=32, margin=0.0).face
    assert face.shape == (32, 32, 3) and face.dtype == np.uint8
    assert np.allclose(face[2:-2, 2:-2], [255, 0, 0], atol=2)


def test_find_face_margin_adds_context_around_the_face():
    face = find_face(scene(), box=(120, 20, 160, 60), size=56, margin=0.4).face
    assert np.allclose(face[28, 28], [255, 0, 0], atol=2)
    assert np.allclose(face[1, 1], [128, 128, 128], atol=2)  # 8 px of context on each side


def test_find_face_box_at_the_edge_stays_inside_the_image():
    face = find_face(scene(), box=(180, 0, 200, 20), size=30, margin=1.0).face
    # 40 px square shifted left/down to fit: its top right corner is the image corner.
    assert np.allclose(face[0, -1], [128, 128, 128], atol=2)
    assert face.shape == (30, 30, 3)


def test_find_face_centre_square_only_when_asked_for():
    image = Image.new("RGB", (300, 100), (0, 0, 255))
    image.paste((0, 255, 0), (100, 0, 200, 100))
    face = find_face(image, size=16, center=True).face
    assert np.array_equal(face, find_face(image, box="center", size=16).face)
    # LANCZOS reads a pixel beyond the crop, so only the outermost columns see blue.
    assert np.allclose(face[:, 1:-1], [0, 255, 0], atol=2)
    assert face[:, 0, 2].max() < 64


@pytest.mark.parametrize(
    "box, message",
    [((10, 10, 5, 20), "x1 < x2"), ((500, 10, 600, 20), "outside"), ((1, 2, 3), "four numbers"), ("abcd", "four numbers")],
)
def test_find_face_bad_boxes(box, message):
    with pytest.raises(ValueError, match=message):
        find_face(scene(), box=box).face


def test_find_face_of_encoded_bytes_is_the_boxed_face():
    crop = find_face(encoded(scene(), "PNG"), box=(120, 20, 160, 60), size=64, margin=0.6).face
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert np.abs(crop[32, 32].astype(int) - [255, 0, 0]).max() <= 3


# ---------------------------------------------------------------- one reader for crops and uploads

def sixteen_bit_png(path, width, height, row_value):
    """Write a 16-bit greyscale PNG row by row (no full image in memory); row_value(y) -> 0..65535."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(6)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)))
        for y in range(height):
            row = b"\x00" + struct.pack(">H", row_value(y)) * width
            block = compressor.compress(row)
            if block:
                out.write(chunk(b"IDAT", block))
        out.write(chunk(b"IDAT", compressor.flush()) + chunk(b"IEND", b""))
    return path


MEMORY_PROBE = """
import resource, sys, time
from course_utils.photo import load_photo
import numpy as np
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
image = load_photo(sys.argv[1])
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mean = float(np.asarray(image).mean())
print(before, after, image.size[0], image.size[1], round(mean, 1), round(seconds, 1))
"""


def test_huge_sixteen_bit_png_loads_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    path = sixteen_bit_png(tmp_path / "huge16.png", 13000, 13000, lambda y: 20000 + (y * 3) % 20000)
    assert path.stat().st_size < 2_000_000
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True,
                            timeout=300, cwd=str(Path(__file__).resolve().parents[1]))
    assert result.returncode == 0, result.stderr
    before_kb, after_kb, width, height, mean, seconds = result.stdout.split()
    print(f"ru_maxrss after imports {int(before_kb) // 1024} MB, after load_photo {int(after_kb) // 1024} MB, "
          f"{seconds} s")
    assert (int(width), int(height)) == (DEFAULT_MAX_SIDE, DEFAULT_MAX_SIDE)
    assert 100 < float(mean) < 150  # 16-bit values scaled by 1/257, not clipped to white
    # The 16-bit decode alone is 13000*13000*2 B = 338 MB; a float64 copy would add 1.35 GB.
    assert int(after_kb) - int(before_kb) < 1024 * 1024


def png_file(tmp_path, image, name):
    path = tmp_path / name
    image.save(path)
    return path


def test_sixteen_bit_png_crop_is_not_near_white(tmp_path):
    values = np.full((120, 120), 30000, dtype=np.uint16)
    values[40:80, 40:80] = 10000
    path = png_file(tmp_path, Image.fromarray(values), "grey16.png")
    crop, outcome = load_face_crop(path, (40, 40, 80, 80), image_size=32, margin=0.0)
    assert outcome == GRAYSCALE
    assert np.allclose(crop[4:-4, 4:-4], round(10000 / 257), atol=2)
    assert np.array_equal(crop, find_face(path, box=(40, 40, 80, 80), size=32, margin=0.0).face)


def test_transparency_is_white_in_crops_and_uploads_alike(tmp_path):
    rgba = np.zeros((100, 100, 4), dtype=np.uint8)  # hidden colour black, fully transparent
    rgba[30:70, 30:70] = (200, 30, 40, 255)
    rgba[0:10, :] = (0, 0, 0, 128)
    path = png_file(tmp_path, Image.fromarray(rgba, "RGBA"), "cutout.png")
    for box, margin in [((30, 30, 70, 70), 0.8), ((0, 0, 100, 100), 0.0)]:
        training, outcome = load_face_crop(path, box, image_size=48, margin=margin)
        upload = find_face(path, box=box, size=48, margin=margin).face
        assert outcome == OK
        assert np.array_equal(training, upload)
    assert np.allclose(training[30, 2], 255, atol=1)  # transparent -> white, not black
    assert np.allclose(training[1, 30], 127, atol=2)  # half-transparent black over white


def test_face_boxes_outside_the_photo_or_not_finite_are_invalid(tmp_path):
    path = png_file(tmp_path, Image.new("RGB", (100, 80), (10, 20, 30)), "photo.png")
    for box in [(200, 10, 260, 70), (-90, -90, -10, -10), (0, 0, np.inf, 40), (np.nan, 0, 10, 10), (1, 2, 3)]:
        assert load_face_crop(path, box) == (None, BAD_BOX)


def test_over_limit_photo_in_a_batch_is_counted_not_raised(tmp_path, monkeypatch):
    small = png_file(tmp_path, Image.new("RGB", (40, 40), (90, 90, 90)), "small.png")
    big = png_file(tmp_path, Image.new("RGB", (400, 400), (90, 90, 90)), "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # big = 160000 px > 2 * 20000
    images, outcomes = crop_faces([small, big, small], [(5, 5, 35, 35), (50, 50, 350, 350), (5, 5, 35, 35)],
                                  image_size=16, workers=1, progress=False)
    assert outcomes == [OK, TOO_LARGE, OK] and images.shape == (3, 16, 16, 3)
    assert images[1].max() == 0 and np.allclose(images[0], 90, atol=1)
    with pytest.raises(ValueError, match="too large to decode safely"):
        load_photo(big)


def test_header_truncated_jpeg_is_a_value_error(tmp_path):
    data = encoded(scene(), "JPEG")
    for cut in (30, 120, 200):
        with pytest.raises(ValueError):
            load_photo(data[:cut])
        (tmp_path / "cut.jpg").write_bytes(data[:cut])
        assert load_face_crop(tmp_path / "cut.jpg", (120, 20, 160, 60)) == (None, UNREADABLE)


def test_jpeg_with_cut_scan_data_and_a_new_end_marker_is_flagged(tmp_path):
    rng = np.random.default_rng(1)
    data = encoded(Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)), "JPEG", quality=90)
    damaged = data[: int(len(data) * 0.6)] + b"\xff\xd9"
    with pytest.warns(UserWarning, match="cut short"):
        load_photo(damaged)
    (tmp_path / "cut.jpg").write_bytes(damaged)
    assert load_face_crop(tmp_path / "cut.jpg", (50, 50, 200, 200)) == (None, UNREADABLE)
    (tmp_path / "whole.jpg").write_bytes(data)
    assert load_face_crop(tmp_path / "whole.jpg", (50, 50, 200, 200))[1] == OK


@pytest.mark.parametrize("max_side", [0, -5, 3, 2.5, None])
def test_bad_max_side_is_a_clear_value_error(max_side):
    with pytest.raises(ValueError, match="max_side must be"):
        load_photo(encoded(scene(), "PNG"), max_side=max_side)


def test_long_thin_photo_message_gives_the_real_size():
    with pytest.raises(ValueError, match=r"is 8x5000 pixels, too long and thin.* 3x2048"):
        load_photo(encoded(Image.new("RGB", (8, 5000)), "PNG"))


# ---------------------------------------------------------------- hostile files

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 64 64
%%EndComments
newpath 0 0 moveto 64 0 lineto 64 64 lineto closepath fill
showpage
%%EOF
"""


@pytest.fixture
def ghostscript_calls(monkeypatch):
    """Pretend Ghostscript is installed and failing; record every command Pillow would run."""
    import subprocess

    from PIL import EpsImagePlugin

    calls = []

    def failing_ghostscript(command, *args, **kwargs):
        calls.append(command)
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")
    monkeypatch.setattr(subprocess, "check_call", failing_ghostscript)
    return calls


def test_an_eps_upload_named_jpg_is_refused_without_running_anything(ghostscript_calls, tmp_path):
    (tmp_path / "me.jpg").write_bytes(EPS)
    for source in (EPS, tmp_path / "me.jpg"):
        with pytest.raises(ValueError, match="not an image format the course reads"):
            load_photo(source)
    assert ghostscript_calls == []


def test_an_eps_photo_in_the_dataset_is_counted_and_the_build_goes_on(ghostscript_calls, tmp_path):
    good = png_file(tmp_path, Image.new("RGB", (40, 40), (90, 90, 90)), "good.png")
    (tmp_path / "eps.jpg").write_bytes(EPS)
    images, outcomes = crop_faces([good, tmp_path / "eps.jpg", good], [(5, 5, 35, 35)] * 3, image_size=16,
                                  workers=1, progress=False)
    assert outcomes == [OK, UNREADABLE, OK] and images[1].max() == 0
    assert ghostscript_calls == []


def test_a_memory_error_on_one_photo_is_counted_not_raised(tmp_path, monkeypatch):
    from PIL import PngImagePlugin

    from course_utils.data import crops

    small = png_file(tmp_path, Image.new("RGB", (40, 40), (90, 90, 90)), "small.png")
    marked = PngImagePlugin.PngInfo()
    marked.add_text("name", "huge")  # how the stand-in decoder below tells this photo apart
    huge = tmp_path / "huge.png"
    Image.new("RGB", (40, 40), (90, 90, 90)).save(huge, pnginfo=marked)
    real_decode = crops.decode_rgb

    def out_of_memory_on_huge(image, *args, **kwargs):
        if image.info.get("name") == "huge":
            raise MemoryError("cannot allocate")
        return real_decode(image, *args, **kwargs)

    monkeypatch.setattr(crops, "decode_rgb", out_of_memory_on_huge)
    images, outcomes = crop_faces([small, huge, small], [(5, 5, 35, 35)] * 3, image_size=16, workers=1,
                                  progress=False)
    assert outcomes == [OK, TOO_LARGE, OK] and np.allclose(images[2], 90, atol=1)


def rgba_png(path, width, height):
    """A transparent RGBA PNG with an opaque red square in its middle third, written row by row (~0.7 MB)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    third = width // 3
    clear = b"\x00" + b"\x00\x00\x00\x00" * width
    square = b"\x00" + b"\x00\x00\x00\x00" * third + b"\xc8\x1e\x28\xff" * third + b"\x00\x00\x00\x00" * (width - 2 * third)
    compressor = zlib.compressobj(6)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)))
        for y in range(height):
            block = compressor.compress(square if height // 3 <= y < 2 * height // 3 else clear)
            if block:
                out.write(chunk(b"IDAT", block))
        out.write(chunk(b"IDAT", compressor.flush()) + chunk(b"IEND", b""))
    return path


CROP_MEMORY_PROBE = """
import resource, sys
from course_utils.data.crops import load_face_crop
side = int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
crop, outcome = load_face_crop(sys.argv[1], (side / 3, side / 3, 2 * side / 3, 2 * side / 3), image_size=64)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, outcome, *crop[32, 32])
"""


def test_a_huge_rgba_png_becomes_a_training_crop_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    side = 13000  # 169 MP, under the pixel limit: 676 MB once decoded
    path = rgba_png(tmp_path / "cutout.png", side, side)
    assert path.stat().st_size < 1_000_000
    result = subprocess.run([sys.executable, "-c", CROP_MEMORY_PROBE, str(path), str(side)], capture_output=True,
                            text=True, timeout=300, cwd=str(Path(__file__).resolve().parents[1]))
    assert result.returncode == 0, result.stderr
    before_kb, after_kb, outcome, *centre_pixel = result.stdout.split()
    print(f"load_face_crop grew ru_maxrss by {(int(after_kb) - int(before_kb)) // 1024} MB")
    assert outcome == OK and [int(v) for v in centre_pixel] == [200, 30, 40]
    decoded_kb = side * side * 4 // 1024
    # The decode itself is needed; converted, premultiplied or composited full-size copies are not.
    assert int(after_kb) - int(before_kb) < 1.5 * decoded_kb
