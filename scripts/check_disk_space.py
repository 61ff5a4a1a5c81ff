"""Refuse to start the set-up when the disk cannot hold it, before pip fails half way.

``make setup`` calls it (with the system Python: the venv may not exist yet) only when
``.venv`` has no torch. PyPI's torch for x86_64 Linux is a CUDA build: the set-up measured
6.4 GiB in ``.venv`` and ``make test`` writes about 0.7 GiB of course data beside it.
A CI run that started with 3.2 GiB free died in pip with "No space left on device".
"""
from __future__ import annotations

import argparse
import shutil
import sys

GIB = 1024 ** 3


def disk_space_problem(path: str, need_gib: float) -> str | None:
    """A message when ``path``'s file system has less than ``need_gib`` GiB free, else None."""
    free_gib = shutil.disk_usage(path).free / GIB
    if free_gib >= need_gib:
        return None
    return (f"not enough disk space to set up the course: {free_gib:.1f} GiB free on the file system of "
            f"{path!r}, about {need_gib:g} GiB needed (PyTorch from PyPI with its CUDA libraries is "
            f"6.4 GiB in .venv, the course data about 0.7 GiB). Free some space, or reuse a torch you "
            f"already have: make TORCH_PINS=\"torch==X torchvision==Y\" SETUP_NEEDS_GIB=2 setup")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a folder on the file system that will hold .venv")
    parser.add_argument("--need-gib", type=float, required=True, help="the Makefile's SETUP_NEEDS_GIB")
    args = parser.parse_args(argv)
    problem = disk_space_problem(args.path, args.need_gib)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
