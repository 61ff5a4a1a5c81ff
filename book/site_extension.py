"""Sphinx extension for the course site: a notebook's Colab badge gives way to the theme's launch button.

Each chapter opens with an "Open in Colab" badge: an image that colab.research.google.com serves. The
site shows no image from another server (it is built, read and tested offline), and each notebook page
has the theme's own Colab launch button, which opens the same notebook at the same ref
(``course_utils.colab.REF``). So the paragraph that holds only the badge is left out of the page.
"""
from __future__ import annotations

from docutils import nodes

from course_utils.colab import BADGE_MARKER


def is_badge_paragraph(paragraph: nodes.paragraph) -> bool:
    """A paragraph made of raw HTML only, one piece of which is the badge's link."""
    children = list(paragraph.children)
    return (bool(children) and all(isinstance(child, nodes.raw) for child in children)
            and any(f'id="{BADGE_MARKER}"' in child.astext() for child in children))


def drop_colab_badges(app, doctree: nodes.document) -> None:
    for paragraph in list(doctree.findall(nodes.paragraph)):
        if is_badge_paragraph(paragraph):
            paragraph.parent.remove(paragraph)


def setup(app):
    app.connect("doctree-read", drop_colab_badges)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
