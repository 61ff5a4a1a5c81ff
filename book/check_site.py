"""Check a built site: every local link and image of every page points at something the site has.

Sphinx (run with warnings as errors) already fails on a missing image or an unresolved reference in
the sources it reads; this also covers what it passes through untouched: raw HTML in the notebooks and
the README, theme templates, and anchors (``page.html#section``). An image from another server fails
too: the site is read and tested offline (book/site_extension.py drops the notebooks' Colab badge).

    python book/check_site.py _build/html
"""
from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src"}


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, target)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("id", "name"):
            if attributes.get(name):
                self.ids.add(attributes[name])
        attribute = LINK_ATTRIBUTES.get(tag)
        if attribute and attributes.get(attribute):
            self.links.append((tag, attributes[attribute]))


def _parse(page: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def site_problems(html_dir: Path) -> list[str]:
    """One line per broken local link, missing file, unknown anchor or off-site image; [] when none."""
    html_dir = html_dir.resolve()
    # _static/ holds the theme's template fragments, not pages.
    pages = {page: _parse(page) for page in sorted(html_dir.rglob("*.html"))
             if "_static" not in page.relative_to(html_dir).parts}
    problems = []
    for page, parsed in pages.items():
        where = page.relative_to(html_dir)
        for tag, target in parsed.links:
            parts = urlsplit(target)
            if parts.scheme in ("http", "https") or target.startswith("//"):
                if tag == "img":
                    problems.append(f"{where}: image from another server {target}")
                continue
            if parts.scheme:  # data:, mailto:, javascript:
                continue
            path = unquote(parts.path)
            destination = (page.parent / path).resolve() if path else page
            if path.endswith("/") or destination.is_dir():
                destination = destination / "index.html"
            if html_dir not in destination.parents and destination != html_dir:
                problems.append(f"{where}: {tag} points outside the site: {target}")
            elif not destination.is_file():
                problems.append(f"{where}: {tag} points at a missing file: {target}")
            elif parts.fragment and destination.suffix == ".html":
                if destination in pages and unquote(parts.fragment) not in pages[destination].ids:
                    problems.append(f"{where}: no anchor #{parts.fragment} in {destination.relative_to(html_dir)}")
    return problems


def main() -> int:
    html_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "_build" / "html"
    problems = site_problems(html_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{html_dir}: {len(problems)} broken local links or images")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
