"""Shared tiny test data: an in-memory face cache with any number of age groups."""
import numpy as np
import pandas as pd
import pytest
import torch

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
