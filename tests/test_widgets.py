"""AgeSliderApp callbacks driven headlessly, with tiny stand-in models."""
import datetime
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FixedClassifier, TinyEncoder, TinyGenerator, phone_jpeg
from PIL import Image

from course_utils.photo import find_face
from course_utils.widgets import (BOX_COLOUR, AgeSliderApp, compose_panels, compose_photos, draw_box,
                                  years_to_position)

Z_DIM, N_CLASSES, SIZE = 8, 2, 16
GROUPS = [(20, 30), (40, 50)]


@pytest.fixture
def app():
    torch.manual_seed(0)
    faces = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    return AgeSliderApp(TinyGenerator(SIZE), TinyEncoder(SIZE), faces, [0, 1, 0], GROUPS, refine_steps=3, display_size=48)


def uploaded(content: bytes, name: str, mime: str):
    """A FileUpload value as ipywidgets 8 deserializes it from the browser."""
    return ({
        "name": name, "type": mime, "size": len(content), "content": memoryview(content),
        "last_modified": datetime.datetime.now(datetime.timezone.utc),
    },)


def png_upload(image: Image.Image, name="me.png"):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return uploaded(buffer.getvalue(), name, "image/png")


def panels(app):
    return np.asarray(Image.open(io.BytesIO(app.image.value)).convert("RGB"))


def test_years_and_positions_interpolate_between_midpoints_and_clamp():
    assert years_to_position(25, GROUPS) == 0.0
    assert years_to_position(35, GROUPS) == 0.5
    assert years_to_position(45, GROUPS) == 1.0
    assert years_to_position(10, GROUPS) == 0.0 and years_to_position(80, GROUPS) == 1.0
    three = [(0, 18), (20, 30), (40, 50)]
    assert years_to_position(35, three) == pytest.approx(1.5)  # midpoints 9, 25, 45
    with pytest.raises(ValueError, match="increasing order"):
        years_to_position(30, [(40, 50), (20, 30)])


def test_initial_view_and_layout(app):
    assert app.slider.min == 25 and app.slider.max == 45 and app.slider.step == 1
    assert app.image.format == "png"
    assert panels(app).shape == (48, 3 * 48 + 2 * 4, 3)
    assert "face 0" in app.status.value and "20–30" in app.status.value
    assert app.widget.children  # a VBox ready for display()


def test_slider_move_re_renders_without_re_encoding(app):
    before, calls = app.image.value, app.encoder.calls
    app.slider.value = 45
    assert app.image.value != before
    assert app.encoder.calls == calls
    assert "aged to 45 years" in app.caption.value
    original_and_reconstruction = panels(app)[:, : 2 * 48 + 4]
    app.slider.value = 35
    assert np.array_equal(panels(app)[:, : 2 * 48 + 4], original_and_reconstruction)


def test_picking_another_face_re_encodes(app):
    before, calls = app.image.value, app.encoder.calls
    app.picker.value = 1
    assert app.image.value != before
    assert app.encoder.calls == calls + 1
    assert "face 1" in app.status.value and "40–50" in app.status.value
    app.picker.value = 0  # seen before: served from the cache
    assert app.encoder.calls == calls + 1


PHOTOS = Path(__file__).resolve().parents[1] / "assets" / "photos"


def photo_upload(name):
    return uploaded((PHOTOS / name).read_bytes(), name, "image/jpeg")


def test_uploading_a_photo_ages_the_detected_face_and_shows_its_box(app):
    calls = app.encoder.calls
    assert app.photo_view.layout.display == "none"  # dataset faces: no photo panel
    app.upload.value = photo_upload("astronaut.jpg")
    expected = find_face(PHOTOS / "astronaut.jpg", size=SIZE).face
    assert np.array_equal(app.last_result.original, expected)
    assert app.encoder.calls == calls + 1
    assert "'astronaut.jpg'" in app.status.value and "assumed" in app.status.value
    assert "face found at" in app.status.value
    assert app.upload.value == ()  # cleared so the same file can be chosen again
    # The photo panel: the photo with the face box drawn | the whole photo edited, both 96 px high.
    assert app.photo_view.layout.display is None
    view = np.asarray(Image.open(io.BytesIO(app.photo_view.value)).convert("RGB"))
    assert view.shape == (96, 2 * 96 + 4, 3)
    box_colour = np.all(np.abs(view[:, :96].astype(int) - BOX_COLOUR) < 60, axis=-1)
    assert box_colour[:, 30:50].any()  # the face box (x 177..272 of 512) is outlined
    # Redraw: only the boxed photo; the aged panel is the generator's drawing.
    app.output.value = "redraw"
    assert app.last_result.output == "redraw" and np.array_equal(app.last_result.aged, app.last_result.redraw)
    assert np.asarray(Image.open(io.BytesIO(app.photo_view.value))).shape[1] == 96
    assert "redrawn" in app.caption.value
    app.picker.value = 1  # back to a dataset face: the photo panel goes away
    assert app.photo_view.layout.display == "none"


def test_output_toggle_defaults_to_the_edit(app):
    assert app.output.value == "edit" and app.last_result.output == "edit"
    assert np.array_equal(app.last_result.aged, app.last_result.edit)
    assert "photo edited" in app.caption.value
    before = app.image.value
    app.slider.value = 45
    edited = app.image.value
    app.output.value = "redraw"
    assert app.image.value not in (before, edited)


def test_uploading_a_photo_without_a_face_says_so_and_keeps_the_face(app):
    before, calls = app.image.value, app.encoder.calls
    app.upload.value = photo_upload("coffee.jpg")
    assert app.image.value == before and app.encoder.calls == calls
    assert "Could not use 'coffee.jpg'" in app.status.value and "no face found" in app.status.value
    assert "box=" in app.status.value
    app.slider.value = 40  # the previous face is still the one being aged
    assert "face 0" in app.status.value


def test_uploading_garbage_keeps_the_image_and_explains(app):
    before = app.image.value
    app.upload.value = uploaded(b"hello", "notes.txt", "text/plain")
    assert app.image.value == before
    assert "Could not use 'notes.txt'" in app.status.value and "not an image" in app.status.value
    app.slider.value = 40  # the previous face is still the one being aged
    assert "face 0" in app.status.value


def test_upload_with_a_classifier_uses_its_prediction():
    faces = np.zeros((1, SIZE, SIZE, 3), dtype=np.uint8)
    app = AgeSliderApp(TinyGenerator(SIZE), TinyEncoder(SIZE), faces, [0], GROUPS, classifier=FixedClassifier(1), refine_steps=0)
    app.upload.value = photo_upload("camera.jpg")
    assert app.last_result.source == 1
    assert "classifier puts it in 40–50" in app.status.value


def test_mismatched_arguments_are_value_errors():
    faces = np.zeros((2, SIZE, SIZE, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="one label per face"):
        AgeSliderApp(TinyGenerator(SIZE), TinyEncoder(SIZE), faces, [0], GROUPS)
    with pytest.raises(ValueError, match="2 age groups"):
        AgeSliderApp(TinyGenerator(SIZE), TinyEncoder(SIZE), faces, [0, 0], [(20, 30), (40, 50), (60, 70)])
    with pytest.raises(ValueError, match="uint8"):
        AgeSliderApp(TinyGenerator(SIZE), TinyEncoder(SIZE), faces.astype(float), [0, 0], GROUPS)


def test_compose_panels_scales_each_panel():
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    picture = np.asarray(Image.open(io.BytesIO(compose_panels([red, red * 0], 10))))
    assert picture.shape == (10, 24, 3)
    assert picture[5, 5].tolist() == [255, 0, 0] and picture[5, 12].tolist() == [255, 255, 255]
    assert picture[5, 20].tolist() == [0, 0, 0]


def test_uploading_a_photo_with_two_faces_ages_the_larger(app):
    head = Image.open(PHOTOS / "astronaut.jpg").convert("RGB").crop((130, 10, 320, 200))
    canvas = Image.new("RGB", (640, 400), (128, 128, 128))
    canvas.paste(head.resize((114, 114), Image.Resampling.LANCZOS), (40, 140))
    canvas.paste(head, (380, 60))
    app.upload.value = png_upload(canvas, "two.png")
    assert "2 faces found, aging the largest" in app.status.value
    with pytest.warns(UserWarning, match="found 2 faces"):
        expected = find_face(canvas, size=SIZE).face
    assert np.array_equal(app.last_result.original, expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_phone_photo_in_any_exif_orientation_is_aged_upright(app, orientation):
    upright = Image.open(PHOTOS / "astronaut.jpg").convert("RGB")
    reference = find_face(phone_jpeg(upright, 1), size=SIZE)
    app.upload.value = uploaded(phone_jpeg(upright, orientation), "phone.jpg", "image/jpeg")
    assert "Could not use" not in app.status.value and "face found at" in app.status.value
    assert max(abs(a - b) for a, b in zip(app._photo.box, reference.box)) <= 2
    assert np.abs(app.last_result.original.astype(int) - reference.face).mean() < 8
    # The boxed panel is the upright photo with the box on the face; the edited one is upright too.
    view = np.asarray(Image.open(io.BytesIO(app.photo_view.value)).convert("RGB")).astype(int)
    boxed = np.asarray(Image.open(io.BytesIO(compose_photos([draw_box(reference.photo, reference.box)], 96))))
    assert np.abs(view[:, :96] - boxed).mean() < 3
    shown = np.asarray(upright.resize((96, 96), Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(view[60:, 100:] - shown[60:]).mean() < 3  # below the face the edit changes nothing
