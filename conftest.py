"""pytest settings for `pytest --nbval notebooks/` (the unit tests have tests/conftest.py).

nbval waits a fixed 5 s for a cell's outputs after the cell has finished. On a busy 2-core
machine that was once too short after chapter 6's training cell (a fresh `make test` failed
with "Timeout of 5 seconds exceeded waiting for output" although the cell had run), so wait
up to a minute. The cell's own time limit stays `--nbval-cell-timeout`.
"""
NBVAL_OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's notebook cells
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S
