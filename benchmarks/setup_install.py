"""Benchmark: installing the course's locked environment with pip against uv, each into a fresh venv.

pip: `pip install --constraint requirements.lock --group torch -e .[dev]` after upgrading pip to one that
     reads dependency groups.
uv:  `uv pip install --compile-bytecode ...` with the same lock, groups and package, given pip's indexes
     (scripts/uv_index_options.py), as `make setup` does. Both compile bytecode, as pip does by default.

Each starts with an empty download cache and a new venv, which is deleted afterwards; the uv binary itself
must already be installed (``make setup`` puts it in .venv-uv). Prints the seconds of each and, last,
``RESULT setup_install_speedup <pip seconds / uv seconds>``. Needs about 7 GiB of free disk at a time.
Usage: python benchmarks/setup_install.py [--uv .venv-uv/bin/uv]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PACKAGES = ["--constraint", str(LOCK), "--group", "torch", "-e", ".[dev]"]


def timed(commands: list[list[str]], env: dict) -> float:
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def install_seconds(installer: str, uv: str, scratch: Path) -> float:
    venv = scratch / f"venv-{installer}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_CACHE_DIR": str(scratch / "pip-cache"), "UV_CACHE_DIR": str(scratch / "uv-cache")}
    try:
        if installer == "pip":
            return timed([[python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                          [python, "-m", "pip", "install", "--quiet", *PACKAGES]], env)
        indexes = subprocess.run([sys.executable, str(ROOT / "scripts" / "uv_index_options.py")],
                                 capture_output=True, text=True, check=True).stdout.split()
        return timed([[uv, "pip", "install", "--quiet", "--compile-bytecode", *indexes, "--python", python,
                       *PACKAGES]], env)
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default=str(ROOT / ".venv-uv" / "bin" / "uv"), help="the uv binary")
    args = parser.parse_args()
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="setup-bench-") as scratch:
        for installer in ("pip", "uv"):
            seconds[installer] = install_seconds(installer, args.uv, Path(scratch))
            print(f"{installer}: {seconds[installer]:.1f} s for the locked environment, torch's CUDA build included")
    print(f"RESULT setup_install_speedup {seconds['pip'] / seconds['uv']:.2f}")


if __name__ == "__main__":
    main()
