"""The built course site's chapter 5 page in headless Chromium: every image on it loads.

`make site` builds the site into _build/html (book/build_site.py); `make browser` runs this after it. The
page is opened from disk (file://), offline, as a reader of a downloaded copy would open it. A
screenshot of the whole page lands in test-artifacts/site/.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils import colab

try:  # tests/ may or may not be a package, depending on the pytest import mode
    from . import browser_helpers as lab
except ImportError:
    import browser_helpers as lab

pytestmark = pytest.mark.browser

SITE = lab.REPO_ROOT / "_build" / "html"
CHAPTER = "05_aging"
ARTIFACTS_DIR = lab.REPO_ROOT / "test-artifacts" / "site"
# Every <img> once it has finished loading or failing: src, and naturalWidth (0 when it did not load).
IMAGES_JS = """async () => {
    const images = Array.from(document.images);
    for (const image of images) image.loading = 'eager';
    await Promise.all(images.map(image => image.complete ? null
        : new Promise(done => { image.addEventListener('load', done); image.addEventListener('error', done); })));
    return images.map(image => ({src: image.currentSrc || image.src, width: image.naturalWidth}));
}"""


def figures_in_notebook(path: Path) -> int:
    """The images a reader of the notebook sees: image outputs and markdown images."""
    notebook = nbformat.read(path, as_version=4)
    outputs = sum(1 for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
                  if any(kind.startswith("image/") for kind in output.get("data", {})))
    markdown = sum(len(colab.MARKDOWN_IMAGE.findall(cell.source)) for cell in notebook.cells
                   if cell.cell_type == "markdown")
    return outputs + markdown


def test_chapter_5_page_shows_every_image():
    lab.require_browser_tools()
    page_path = SITE / "notebooks" / f"{CHAPTER}.html"
    if not page_path.is_file():
        pytest.fail(f"{page_path} is missing: run `make site` first")
    from playwright.sync_api import sync_playwright

    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    console = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(lab.CHROMIUM_PATH), headless=True, args=lab.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
            page.goto(page_path.as_uri(), wait_until="load")
            images = page.evaluate(IMAGES_JS)
            launch_links = page.eval_on_selector_all(
                "a[href^='https://colab.research.google.com/']", "links => links.map(link => link.href)")
            page.screenshot(path=ARTIFACTS_DIR / f"{CHAPTER}.png", full_page=True)
        finally:
            (ARTIFACTS_DIR / "browser-console.log").write_text("\n".join(console) + "\n")
            browser.close()

    not_loaded = [image["src"][:120] for image in images if image["width"] == 0]
    assert not not_loaded, f"images that did not load on {page_path.name}: {not_loaded}"
    expected = figures_in_notebook(lab.REPO_ROOT / "notebooks" / f"{CHAPTER}.ipynb")
    assert expected >= 3, "chapter 5 has its diagram and figure outputs"
    page_figures = [image for image in images if "/_static/" not in image["src"]]  # not the theme's icons
    assert len(page_figures) == expected, (
        f"the page shows {len(page_figures)} figures, the notebook has {expected}")
    assert launch_links == [colab.colab_url(f"{CHAPTER}.ipynb")], launch_links
