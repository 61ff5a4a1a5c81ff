"""The one table of run sizes: every named preset, what it is for, and how long and wide it trains.

The config dataclasses take their defaults from the ``course-cpu`` row; the chapters, the
CLI and ``scripts/`` pick a row with :func:`preset` and never write a step count of their own.
``FACE_AGING_RUN_SIZE=tiny`` picks the smoke-test row whatever the data and device.

The shipped models (``course_utils/pretrained``) were trained longer, until their quality stopped
improving or they reached their cap (``scripts/train_course_models.py``); ``course-gpu`` trains about as long.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunPreset:
    """How long and how wide one kind of run trains, and what that costs."""

    purpose: str = field(metadata={"help": "what the row is for; the appendix's table shows it"})
    gan_steps: int = field(metadata={"help": "chapter 2's GAN: steps, each one D step and one G step on a batch"})
    gan_width: int = field(metadata={"help": "the GAN's base channel count"})
    gan_batch: int = field(metadata={"help": "faces per GAN step"})
    encoder_steps: int = field(metadata={"help": "chapter 4's encoder: steps, each on fresh (G(z, y), z) pairs"})
    classifier_epochs: int = field(metadata={"help": "chapter 3's age-group classifier, which measures conditioning"})
    encoder_width: int = 32
    encoder_hidden: int = 512
    encoder_batch: int = 128
    encoder_lr: float = 3e-4  # on the course GAN 1e-3 plateaus far higher and 3e-3 diverges
    encoder_eval_pairs: int = 1024
    judge_epochs: int = 8  # chapter 6's age judge
    image_size: int = 64  # chapter 6's faces (chapters 2-5 take the size chapter 1 cached)
    threads: int | None = None  # CPU threads; None keeps torch's default
    seconds_per_step: float | None = None  # a GAN or encoder step on a 2-core CPU (an estimate); None: unknown


PRESETS = {
    "course-cpu": RunPreset("chapters 2 and 4 on a CPU: short runs that show the method; the shipped models "
                            "carry the results", gan_steps=120, gan_width=32, gan_batch=64, encoder_steps=100,
                            encoder_batch=64, classifier_epochs=6, seconds_per_step=0.3),
    "course-gpu": RunPreset("chapters 2 and 4 on a GPU: about as long as the shipped models",
                            gan_steps=6500, gan_width=32, gan_batch=64, encoder_steps=6000, classifier_epochs=6),
    "real-cpu": RunPreset("real IMDB-WIKI on a CPU: longer than mini-wiki, and still short", gan_steps=3000,
                          gan_width=32, gan_batch=64, encoder_steps=1500, classifier_epochs=6, seconds_per_step=0.3),
    "real-gpu": RunPreset("real IMDB-WIKI on a GPU: a wider model, longer (an unmeasured estimate)",
                          gan_steps=30000, gan_width=64, gan_batch=128, encoder_steps=10000, classifier_epochs=10),
    # Chapter 6 trains two GANs, a judge and two encoders: on a CPU at 32x32 and width 16, on one thread
    # (models this small run slower on two threads of a busy 2-core machine than on one).
    "axis-cpu": RunPreset("chapter 6's own models on a CPU: 32x32 faces, width 16", gan_steps=1600, gan_width=16,
                          gan_batch=64, encoder_steps=400, classifier_epochs=6, encoder_width=16, judge_epochs=8,
                          image_size=32, threads=1, seconds_per_step=0.07),
    "axis-gpu": RunPreset("chapter 6's own models on a GPU: 64x64 faces at the course width", gan_steps=20000,
                          gan_width=32, gan_batch=64, encoder_steps=8000, classifier_epochs=6, judge_epochs=20),
    # Seconds instead of minutes; the results mean nothing. Yet long enough for the checks every dataset gets:
    # at 40 GAN steps the generator has not left its near-constant start, and a classifier of under ~10
    # epochs calls every face one group.
    "tiny": RunPreset("FACE_AGING_RUN_SIZE=tiny: a smoke run, not a result", gan_steps=120, gan_width=8,
                      gan_batch=16, encoder_steps=200, classifier_epochs=10, encoder_width=8, encoder_hidden=64,
                      encoder_batch=32, encoder_lr=1e-3, encoder_eval_pairs=64, judge_epochs=2, image_size=32),
}
DEFAULT = PRESETS["course-cpu"]  # the config dataclasses' defaults


def is_smoke_run() -> bool:
    """Whether ``FACE_AGING_RUN_SIZE=tiny`` asks for smoke-test sizes."""
    return os.environ.get("FACE_AGING_RUN_SIZE", "").strip().lower() == "tiny"


def preset_name(dataset: str, on_gpu: bool, axis: bool = False) -> str:
    """The row for a dataset ("mini-wiki", "wiki", "imdb") on a CPU or a GPU; ``axis``: chapter 6's."""
    if is_smoke_run():
        return "tiny"
    hardware = "gpu" if on_gpu else "cpu"
    if axis:
        return f"axis-{hardware}"
    return f"{'course' if dataset == 'mini-wiki' else 'real'}-{hardware}"


def preset(dataset: str, on_gpu: bool, axis: bool = False) -> RunPreset:
    """The :class:`RunPreset` of :func:`preset_name`."""
    return PRESETS[preset_name(dataset, on_gpu, axis)]
