"""Run every chapter notebook and the appendix in order, in place, and print one summary row per chapter.

Used by ``make course``; ``--only solutions`` runs the solutions notebook. Each notebook is executed
with nbclient in ``notebooks/`` so that the committed outputs are exactly those of this run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def fresh_home(home: Path) -> None:
    """Start from an empty course home, as ``pytest --nbval`` does, so the outputs match."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)


def run_notebook(path: Path, timeout: int) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        nbformat.write(notebook, path)  # keep the outputs, also of a failed run, for inspection
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="FACE_AGING_HOME for this run")
    parser.add_argument("--only", nargs="*", help="chapter prefixes to run, e.g. 01 02")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--keep-home", action="store_true", help="do not clear the course home first")
    args = parser.parse_args()

    home = args.home.resolve()
    if not args.keep_home:
        fresh_home(home)
    os.environ["FACE_AGING_HOME"] = str(home)
    from course_utils.course import format_figures, read_summary  # after FACE_AGING_HOME is set

    rows = []
    chapters = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + [NOTEBOOKS / "appendix_under_the_hood.ipynb"]
    # The solutions notebook runs in `make test` (and by name here): it retrains several short runs.
    for path in chapters + [NOTEBOOKS / "solutions.ipynb"]:
        if (args.only and not any(path.name.startswith(p) for p in args.only)) or (
                not args.only and path.name == "solutions.ipynb"):
            continue
        print(f"== running {path.name}", flush=True)
        try:
            seconds = run_notebook(path, args.timeout)
        except CellExecutionError as error:
            print(f"!! {path.name} failed:\n{error}", file=sys.stderr)
            return 1
        figures = read_summary(path.stem)
        rows.append({"chapter": path.stem, "wall time": f"{seconds / 60:.1f} min",
                     "key figures": format_figures(figures)})
        print(f"   done in {seconds:.0f} s: {rows[-1]['key figures']}", flush=True)

    with pd.option_context("display.max_colwidth", None, "display.width", 250):
        print("\nCourse summary")
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
