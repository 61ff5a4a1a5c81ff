"""Print the uv options that give `uv pip install` the package indexes pip is configured with.

uv reads none of pip's configuration (pip.conf, PIP_* variables). A machine whose pip is pointed at a
local mirror or wheel folder (where torch's large wheels lie, say) would otherwise send uv to PyPI
for them. `make setup` and `make site` pass what this prints to uv; with no pip configuration it
prints nothing and uv uses PyPI, as pip would.
"""
from __future__ import annotations

import re
import subprocess
import sys

# pip's setting -> uv's option of the same meaning
OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}
# `pip config list` lines: "global.extra-index-url='a b'" or ":env:.find-links='/opt/wheels'"
LINE = re.compile(r"^(?P<scope>[^=]*)\.(?P<key>index-url|extra-index-url|find-links)='(?P<value>.*)'$")


def uv_options(pip_config_list: str) -> list[str]:
    """uv's arguments for the indexes in ``pip config list``'s output, each location once."""
    seen: dict[str, list[str]] = {key: [] for key in OPTIONS}
    for line in pip_config_list.splitlines():
        match = LINE.match(line.strip())
        if not match:
            continue
        for value in match["value"].split():
            if value not in seen[match["key"]]:
                seen[match["key"]].append(value)
    args = []
    if seen["index-url"]:
        args += [OPTIONS["index-url"], seen["index-url"][-1]]  # pip keeps one index-url: the last read wins
    for key in ("extra-index-url", "find-links"):
        for value in seen[key]:
            args += [OPTIONS[key], value]
    if seen["extra-index-url"] or seen["find-links"]:
        # pip takes the best match across every index; uv's default stops at the first index naming a package.
        args += ["--index-strategy", "unsafe-best-match"]
    return args


def main() -> None:
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    print(" ".join(uv_options(listed.stdout if listed.returncode == 0 else "")))


if __name__ == "__main__":
    main()
