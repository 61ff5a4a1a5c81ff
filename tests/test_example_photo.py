"""example_photos.example_photo: chapter 5's photographs on a checkout, and on an installed copy (Colab) without one."""
import functools
import hashlib
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import served_on_localhost
from course_utils import colab, example_photos, paths
from course_utils.photo import find_face, load_photo

PHOTOS = Path(__file__).resolve().parents[1] / "assets" / "photos"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder):
    return ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))


@pytest.fixture
def no_checkout(tmp_path, monkeypatch):
    """As on Colab: the package without the repository around it, and a course home of its own."""
    monkeypatch.setattr(paths, "repo_root", lambda: None)
    monkeypatch.setenv("FACE_AGING_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_every_example_photo_is_listed_with_its_checksum():
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in PHOTOS.glob("*.jpg")}
    assert example_photos.EXAMPLE_PHOTOS == on_disk


def test_a_checkout_uses_its_own_file():
    assert example_photos.example_photo("astronaut.jpg") == PHOTOS / "astronaut.jpg"


def test_an_installed_copy_downloads_it_once(no_checkout):
    with served_on_localhost(serve(PHOTOS)) as httpd:
        first = example_photos.example_photo("astronaut.jpg", base_url=httpd.url)
    assert first.is_relative_to(no_checkout)
    assert first.read_bytes() == (PHOTOS / "astronaut.jpg").read_bytes()
    assert find_face(load_photo(first)).detected
    # The server is gone: the kept copy is used without asking again.
    assert example_photos.example_photo("astronaut.jpg", base_url="http://127.0.0.1:9/") == first


def test_a_tampered_download_is_refused_and_not_kept(no_checkout, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "astronaut.jpg").write_bytes((PHOTOS / "chelsea.jpg").read_bytes())  # a cat, not the astronaut
    with served_on_localhost(serve(fake)) as httpd, pytest.raises(RuntimeError, match="SHA-256"):
        example_photos.example_photo("astronaut.jpg", base_url=httpd.url)
    assert not list(no_checkout.rglob("astronaut.jpg*"))


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="not an example photo"):
        example_photos.example_photo("../../etc/passwd")


def test_without_a_base_url_it_asks_github_for_the_file_at_the_release_tag(no_checkout, monkeypatch):
    asked = []
    monkeypatch.setattr(example_photos, "fetch", lambda url, destination, **kwargs: asked.append(url) or destination)
    example_photos.example_photo("camera.jpg")
    assert asked == [f"https://raw.githubusercontent.com/{colab.REPO_SLUG}/{colab.REF}/assets/photos/camera.jpg"]
