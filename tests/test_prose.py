"""The course's text: short cells, no build history, and numbers that come from the run they describe."""
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HISTORY = re.compile(r"when this (chapter|course) was|earlier session|was lent|when this was written|"
                     r"shared with other work", re.IGNORECASE)
# Figures a chapter quotes from the literature or the blog, or constants of the method, not from its own run:
# the blog's unexplained variance (0.6) and the 40% it recovered, the real wiki's 2.5 : 1 imbalance, the
# crop's 1.4 x margin, the 15% held out, and the 50% a label that does nothing is judged right.
CITED = {"0.6", "40%", "2.5", "1.4", "15%", "50%"}


def markdown_and_code(path: Path) -> tuple[list[str], str]:
    """The markdown cells, and everything the code cells say: their sources and their outputs."""
    cells = nbformat.read(path, as_version=4).cells
    markdown = [cell.source for cell in cells if cell.cell_type == "markdown"]
    said = []
    for cell in cells:
        if cell.cell_type != "code":
            continue
        said.append(cell.source)
        for output in cell.get("outputs", []):
            said.append(output.get("text", ""))
            said.extend(str(value) for key, value in output.get("data", {}).items() if key.startswith("text/"))
    return markdown, "\n".join(said)


def quoted_figures(markdown: str) -> set[str]:
    """Decimals and percentages in prose, outside code spans, formulas, links and figures."""
    prose = re.sub(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)|<[^>]+>", " ", markdown,
                   flags=re.DOTALL)
    return set(re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])|(?<![\w.])\d+%", prose))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_markdown_cell_is_a_wall_of_text(path):
    for source in markdown_and_code(path)[0]:
        prose = re.sub(r"!\[[^\]]*\]\([^)]*\)|<[^>]+>|```.*?```", " ", source, flags=re.DOTALL)
        assert len(prose.split()) <= 170, f"{path.name}: a markdown cell of {len(prose.split())} words: {source[:80]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_the_prose_quotes_is_said_by_the_code(path):
    markdown, said = markdown_and_code(path)
    missing = {figure for cell in markdown for figure in quoted_figures(cell)
               if figure not in CITED and figure not in said and figure.rstrip("%") + "%" not in said}
    assert not missing, f"{path.name} quotes {sorted(missing)}, which no code cell prints or sets"


def test_the_figure_finder_finds_figures():
    assert quoted_figures("accuracy 0.937 and 6% better, `0.5` in code, $0.25$ in maths") == {"0.937", "6%"}


def test_the_course_speaks_in_the_present_about_the_learners_run():
    places = [*NOTEBOOKS, ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "course_utils").rglob("*.py")]
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in places
             for match in HISTORY.finditer(path.read_text(errors="replace"))]
    assert not found, found


def test_code_comments_carry_no_dated_measurements():
    dated = re.compile(r"#.*\b20\d\d-\d\d-\d\d\b|measured 20\d\d")
    found = [f"{path.relative_to(ROOT)}:{number}" for path in (ROOT / "course_utils").rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1) if dated.search(line)]
    assert not found, found


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 170, f"README.md has {len(lines)} lines"
