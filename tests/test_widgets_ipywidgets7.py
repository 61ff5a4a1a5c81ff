"""The age slider with an upload as ipywidgets 7 delivers it: Colab ships ipywidgets 7, which pyproject
allows (>=7.5) and the Colab bootstrap keeps. There a FileUpload's value is a read-only dict
{name: {"metadata": {...}, "content": bytes}} that the browser fills through `metadata`, `data` and
`_counter`. Under ipywidgets 7 this drives the widget that way; under 8 (the lock's) the handler gets
the same dict, so the 7 branch of ``widgets._uploaded_files`` runs in every `make test`."""
from pathlib import Path

import ipywidgets
import numpy as np
import pytest

from course_utils.photo import find_face
from course_utils.widgets import AgeSliderApp

try:  # tests/ may or may not be a package, depending on the pytest import mode
    from .test_widgets import GROUPS, SIZE
    from .conftest import TinyEncoder, TinyGenerator
except ImportError:
    from test_widgets import GROUPS, SIZE
    from conftest import TinyEncoder, TinyGenerator

PHOTOS = Path(__file__).resolve().parents[1] / "assets" / "photos"
IPYWIDGETS_7 = ipywidgets.__version__.startswith("7.")


@pytest.fixture
def app():
    faces = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    return AgeSliderApp(TinyGenerator(SIZE), TinyEncoder(SIZE), faces, [0, 1, 0], GROUPS, refine_steps=3, display_size=48)


def upload_as_ipywidgets_7_does(app, name: str) -> None:
    content = (PHOTOS / name).read_bytes()
    metadata = {"name": name, "type": "image/jpeg", "size": len(content), "lastModified": 0}
    if IPYWIDGETS_7:
        app.upload.metadata = [metadata]
        app.upload.data = [content]
        app.upload._counter += 1
    else:
        app._on_upload({"new": {name: {"metadata": metadata, "content": content}}})


def test_an_ipywidgets_7_upload_ages_the_photos_face(app):
    calls = app.encoder.calls
    upload_as_ipywidgets_7_does(app, "astronaut.jpg")
    assert np.array_equal(app.last_result.original, find_face(PHOTOS / "astronaut.jpg", size=SIZE).face)
    assert app.encoder.calls == calls + 1
    assert "'astronaut.jpg'" in app.status.value and "face found at" in app.status.value
    assert app.photo_view.layout.display is None
    app.slider.value = 45
    assert "'astronaut.jpg'" in app.status.value


def test_an_ipywidgets_7_upload_without_a_face_says_so(app):
    before = app.image.value
    upload_as_ipywidgets_7_does(app, "coffee.jpg")
    assert app.image.value == before
    assert "Could not use 'coffee.jpg'" in app.status.value and "no face found" in app.status.value
