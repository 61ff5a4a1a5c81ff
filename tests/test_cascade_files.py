"""Face detection reads the Haar cascades the package ships (course_utils/cascades), never cv2.data:
OpenCV 5's wheels leave cv2.data empty (5.0.0.93: only __init__.py) and conda-forge's build may lack it."""
import tomllib
from pathlib import Path

import pytest

from course_utils import photo

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "assets" / "photos" / "astronaut.jpg"
ASTRONAUT_FACE_CENTRE = (195, 85, 260, 150)  # as in tests/test_face_detection.py


@pytest.fixture
def no_cv2_data(monkeypatch):
    """cv2.data pointing at nothing, and no cascade loaded yet."""
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2.data, "haarcascades", "/nonexistent/", raising=False)
    monkeypatch.setattr(photo, "_CASCADES", {})


def test_faces_are_found_without_cv2_data(no_cv2_data):
    boxes = photo.detect_faces(ASTRONAUT)
    assert len(boxes) == 1
    x1, y1, x2, y2 = ASTRONAUT_FACE_CENTRE
    centre_x, centre_y = (boxes[0][0] + boxes[0][2]) / 2, (boxes[0][1] + boxes[0][3]) / 2
    assert x1 <= centre_x <= x2 and y1 <= centre_y <= y2, boxes[0]


def test_shipped_cascades_are_package_data_with_their_licence():
    used = {"haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"}
    assert {path.name for path in photo.CASCADE_FOLDER.glob("*.xml")} == used
    licence = (photo.CASCADE_FOLDER / "LICENSE.txt").read_text()
    assert "Intel License Agreement" in licence
    for name in used:
        assert "Intel License Agreement" in (photo.CASCADE_FOLDER / name).read_text()[:3000]
        assert name in licence
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert {"cascades/*.xml", "cascades/LICENSE.txt"} <= set(pyproject["tool"]["setuptools"]["package-data"]["course_utils"])
    assert "course_utils/cascades/LICENSE.txt" in pyproject["project"]["license-files"]


def test_an_opencv_without_cascade_classifier_is_named_in_the_error(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.delattr(cv2, "CascadeClassifier")
    monkeypatch.setattr(photo, "_CASCADES", {})
    with pytest.raises(ImportError, match="opencv-contrib-python-headless>=5"):
        photo.detect_faces(ASTRONAUT)
