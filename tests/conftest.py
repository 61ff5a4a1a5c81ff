"""Shared test helpers: a tiny in-memory face cache with any number of age groups, one CPU thread,
an HTTP server on 127.0.0.1 (no test reaches the internet) and photos stored as phones store them."""
import contextlib
import io
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import ExifTags, Image

from course_utils.data import FaceCache


def make_face_cache(age_groups, count: int = 48, size: int = 32, seed: int = 0) -> FaceCache:
    """Random faces whose group shows as a brighter top band, four photos per person."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(age_groups)
    images = rng.integers(0, 100, (count, size, size, 3), dtype=np.uint8)
    for group in range(len(age_groups)):
        images[labels == group, : size // 4] = 100 + 60 * group
    table = pd.DataFrame({"label": labels, "name": [f"person {i // 4}" for i in range(count)],
                          "full_path": [f"{i % 100:02d}/{i}.jpg" for i in range(count)],
                          "age": [sum(age_groups[g]) / 2 for g in labels]})
    table["identity"] = table["name"]
    return FaceCache(images=images, table=table, funnel=pd.DataFrame(), age_groups=tuple(age_groups))


@pytest.fixture
def face_cache_factory():
    """``face_cache_factory(age_groups, count=48, size=32)`` -> a tiny FaceCache."""
    return make_face_cache


@pytest.fixture
def one_thread():
    """Run on one CPU thread (bit-for-bit repeatable); the caller's count is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def served_on_localhost(httpd, poll_interval: float = 0.5):
    """Serve ``httpd`` (bound to 127.0.0.1) from a daemon thread; sets ``httpd.url`` ("http://127.0.0.1:PORT/")."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# EXIF orientation -> how a camera stores an upright scene for that tag (the inverse of the turn the tag asks for).
STORED_FOR_ORIENTATION = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def phone_jpeg(upright: Image.Image, orientation: int, quality: int = 95) -> bytes:
    """JPEG bytes whose pixels are ``upright`` turned as a phone stores them, tagged with ``orientation``."""
    turn = STORED_FOR_ORIENTATION[orientation]
    stored = upright if turn is None else upright.transpose(turn)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


class TinyGenerator(torch.nn.Module):
    """G(z, condition) -> (N, 3, size, size) tanh images, like the course Generator, counting its calls.

    BatchNorm1d refuses a batch of one in train mode, so a one-face call only works
    if callers switch to eval mode, as they should.
    """

    def __init__(self, size: int, z_dim: int = 8, n_classes: int = 2):
        super().__init__()
        self.n_classes, self.z_dim, self.image_size = n_classes, z_dim, size
        self.hidden = torch.nn.Sequential(torch.nn.Linear(z_dim + n_classes, 32), torch.nn.BatchNorm1d(32),
                                          torch.nn.ReLU())
        self.out = torch.nn.Linear(32, 3 * size * size)
        self.calls = 0

    def forward(self, z, condition):
        self.calls += 1
        hidden = self.hidden(torch.cat([z, condition], dim=1))
        return torch.tanh(self.out(hidden)).view(-1, 3, self.image_size, self.image_size)


class TinyEncoder(torch.nn.Module):
    """E(images) -> (N, z_dim), no final activation, counting its calls (encodes vs re-renders)."""

    def __init__(self, size: int, z_dim: int = 8):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * size * size, z_dim))
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        return self.net(images)


class FixedClassifier(torch.nn.Module):
    """An age-group classifier that always predicts ``group``."""

    def __init__(self, group: int, n_classes: int = 2):
        super().__init__()
        self.n_classes, self.group = n_classes, group
        self.bias = torch.nn.Parameter(torch.zeros(n_classes))

    def forward(self, images):
        logits = torch.zeros(images.shape[0], self.n_classes) + self.bias
        logits[:, self.group] = 5.0
        return logits
