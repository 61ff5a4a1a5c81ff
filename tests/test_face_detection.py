"""Face detection and full-photo editing on real photographs (assets/photos/, public domain / CC0).

The rectangles below were set by looking at the photos: each holds the
middle of the person's face (eyes to mouth), in the photo's own pixels.
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import phone_jpeg
from PIL import Image

from course_utils.photo_aging import edit_photo
from course_utils.data.crops import DEFAULT_MARGIN, square_crop_box
from course_utils.data.images import resize_square
from course_utils.photo import NoFaceFound, detect_faces, find_face, load_photo

PHOTOS = Path(__file__).resolve().parents[1] / "assets" / "photos"
FACE_CENTRES = {
    "astronaut.jpg": (195, 85, 260, 150),  # Eileen Collins, face in the upper part, left of centre
    "camera.jpg": (180, 100, 250, 190),    # the cameraman, greyscale, face turned to the right
}
NO_FACE = ["chelsea.jpg", "coffee.jpg"]   # a cat (the cascade finds no human face) and a coffee cup


def inside(point, rectangle):
    x, y = point
    x1, y1, x2, y2 = rectangle
    return x1 <= x <= x2 and y1 <= y <= y2


def centre(box):
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


@pytest.mark.parametrize("name", sorted(FACE_CENTRES))
def test_face_is_found_where_it_is(name):
    boxes = detect_faces(PHOTOS / name)
    assert len(boxes) == 1
    assert inside(centre(boxes[0]), FACE_CENTRES[name]), boxes[0]
    side = boxes[0][2] - boxes[0][0]
    assert 50 <= side <= 160  # a face, not the whole person or an eye


def test_the_crop_is_the_training_crop_around_the_detected_box():
    found = find_face(PHOTOS / "astronaut.jpg", size=64)
    photo = load_photo(PHOTOS / "astronaut.jpg")
    region = square_crop_box(found.box, photo.width, photo.height, DEFAULT_MARGIN)
    assert found.region == region and found.faces_found == 1 and found.detected
    assert np.array_equal(found.face, resize_square(photo, region, 64))
    assert np.array_equal(found.face, find_face(PHOTOS / "astronaut.jpg", size=64).face)
    # Not the centre square any more: the face is in the upper part of the picture.
    assert not np.array_equal(found.face, find_face(PHOTOS / "astronaut.jpg", size=64, center=True).face)


def test_greyscale_photo_gives_a_grey_rgb_crop():
    face = find_face(PHOTOS / "camera.jpg", size=32).face
    assert face.shape == (32, 32, 3)
    assert np.abs(face[..., 0].astype(int) - face[..., 2]).max() <= 2


@pytest.mark.parametrize("name", NO_FACE)
def test_photo_without_a_face_is_a_clear_error(name):
    assert detect_faces(PHOTOS / name) == []
    with pytest.raises(NoFaceFound, match=r"no face found.*box=.*center") as error:
        find_face(PHOTOS / name).face
    assert isinstance(error.value, ValueError)
    with pytest.raises(NoFaceFound):
        find_face(PHOTOS / name).box
    # Asked for explicitly, the centre square is still available.
    assert find_face(PHOTOS / name, box="center", size=16).face.shape == (16, 16, 3)


def test_an_explicit_box_wins_over_detection():
    box = (300, 200, 400, 300)
    found = find_face(PHOTOS / "astronaut.jpg", box=box, size=16)
    assert found.box == box and found.faces_found == 0 and not found.detected
    photo = load_photo(PHOTOS / "astronaut.jpg")
    assert np.array_equal(found.face, resize_square(photo, square_crop_box(box, 512, 512), 16))
    # The same box on a photo without a face: no detection runs, so no error.
    assert find_face(PHOTOS / "chelsea.jpg", box=box, size=16).face.shape == (16, 16, 3)


def two_faces():
    """The astronaut's head pasted twice, at full and at 60% size, onto one grey canvas."""
    head = Image.open(PHOTOS / "astronaut.jpg").convert("RGB").crop((130, 10, 320, 200))
    canvas = Image.new("RGB", (640, 400), (128, 128, 128))
    canvas.paste(head.resize((114, 114), Image.Resampling.LANCZOS), (40, 140))   # small, left
    canvas.paste(head, (380, 60))                                               # large, right
    return canvas


def test_several_faces_take_the_largest_and_say_so():
    boxes = detect_faces(two_faces())
    assert len(boxes) == 2
    assert centre(boxes[0])[0] > 380 and centre(boxes[1])[0] < 160  # largest first
    with pytest.warns(UserWarning, match="found 2 faces; using the largest"):
        found = find_face(two_faces(), size=32)
    assert found.box == boxes[0] and found.faces_found == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit box: no detection, no warning
        find_face(two_faces(), box=boxes[1], size=32)


def test_edit_photo_changes_the_face_region_only():
    photo = load_photo(PHOTOS / "astronaut.jpg")
    found = find_face(photo, size=64)
    change = np.full((64, 64, 3), 40.0, dtype=np.float32)
    edited = edit_photo(photo, found.box, change)
    before = np.asarray(photo)
    assert edited.shape == before.shape and edited.dtype == np.uint8
    x1, y1, x2, y2 = found.region
    outside = np.ones(before.shape[:2], bool)
    outside[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = False
    assert np.array_equal(edited[outside], before[outside])
    fx1, fy1, fx2, fy2 = (int(v) for v in found.box)
    face_diff = edited[fy1:fy2, fx1:fx2].astype(int) - before[fy1:fy2, fx1:fx2]
    assert np.mean(face_diff) > 30  # the change is applied in full on the face itself
    # Feathered: near the region's edge the change is only partly applied.
    edge_row = edited[int(y1) + 2, int(x1) + 2:int(x2) - 2].astype(int) - before[int(y1) + 2, int(x1) + 2:int(x2) - 2]
    assert 0 <= edge_row.mean() < 10


def test_edit_photo_with_no_change_is_the_photo():
    photo = load_photo(PHOTOS / "camera.jpg")
    edited = edit_photo(photo, (180, 100, 250, 190), np.zeros((8, 8, 3), np.float32))
    assert np.array_equal(edited, np.asarray(photo))
    with pytest.raises(ValueError, match="box"):
        edit_photo(photo, None, np.zeros((8, 8, 3), np.float32))


@pytest.fixture(scope="module")
def upright_astronaut():
    """The astronaut photo and its face found with no EXIF turn to apply (orientation 1)."""
    upright = Image.open(PHOTOS / "astronaut.jpg").convert("RGB")
    return upright, find_face(phone_jpeg(upright, 1), size=64)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_finds_the_face_of_the_upright_photo(orientation, upright_astronaut):
    upright, reference = upright_astronaut
    stored = phone_jpeg(upright, orientation)
    found = find_face(stored, size=64)
    # The photo is turned upright exactly once (JPEG re-encoding of the turned pixels aside).
    assert found.photo.size == upright.size
    assert np.abs(np.asarray(found.photo, dtype=int) - np.asarray(reference.photo)).mean() < 2
    assert inside(centre(found.box), FACE_CENTRES["astronaut.jpg"]), found.box
    assert max(abs(a - b) for a, b in zip(found.box, reference.box)) <= 2
    assert np.abs(found.face.astype(int) - reference.face).mean() < 8  # a mirrored or turned crop is ~70 off
    same_box = find_face(stored, box=reference.box, size=64).face
    assert np.abs(same_box.astype(int) - reference.face).mean() < 2
    assert np.array_equal(find_face(stored, size=64).face, found.face) and find_face(stored).box == found.box
    # What find_face hands back is upright and carries no turn: reading it again (edit_photo does) changes nothing.
    assert np.array_equal(np.asarray(load_photo(found.photo)), np.asarray(found.photo))
