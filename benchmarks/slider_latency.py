"""How long one age-slider move takes once a face is encoded (the chapter 5 goal: ~100 ms on a CPU).

Times the slider callback (one generator pass from the cached z, PNG encoding, widget update)
on the course's real model sizes, side by side with the first encode + refinement of a face.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from course_utils.data import DEFAULT_AGE_GROUPS
from course_utils.models import Encoder, Generator
from course_utils.widgets import AgeSliderApp


def main() -> None:
    torch.manual_seed(0)
    generator = Generator(z_dim=100, n_classes=2, image_size=64, width=32).eval()
    encoder = Encoder(z_dim=100, image_size=64, width=32).eval()
    faces = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    started = time.perf_counter()
    app = AgeSliderApp(generator, encoder, faces, [0, 1], DEFAULT_AGE_GROUPS, refine_steps=50)
    first_encode_ms = (time.perf_counter() - started) * 1000
    timings = []
    for age in list(range(26, 46)) * 3:
        started = time.perf_counter()
        app.slider.value = age
        timings.append((time.perf_counter() - started) * 1000)
    median = float(np.median(timings))
    print(f"first encode + 50 refinement steps: {first_encode_ms:.0f} ms")
    print(f"slider move: median {median:.1f} ms, p90 {np.percentile(timings, 90):.1f} ms "
          f"over {len(timings)} moves")
    print(f"slider move / first encode: {median / first_encode_ms:.4f}")
    print(f"RESULT slider_move_ms {median:.1f}")


if __name__ == "__main__":
    main()
