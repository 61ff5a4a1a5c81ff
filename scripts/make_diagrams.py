"""Draw the two course diagrams in assets/: the conditional DCGAN and the aging pipeline.

    .venv/bin/python scripts/make_diagrams.py

Plain matplotlib boxes and arrows, so the figures can be redrawn when the method changes.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets"
COLOURS = {"noise": "#cfe2f3", "age": "#f9cb9c", "net": "#d9ead3", "data": "#eeeeee", "loss": "#ead1dc"}


def box(ax, x, y, w, h, text, kind="net", fontsize=9):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLOURS[kind], edgecolor="#444444", linewidth=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)
    return (x, y, w, h)


def arrow(ax, start, end, text=None, colour="#444444"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=colour, linewidth=1.2))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center", fontsize=8,
                color=colour)


def link(ax, *boxes):
    """Arrows from each box's right edge to the next one's left edge."""
    for a, b in zip(boxes, boxes[1:]):
        arrow(ax, right(a), left(b))


def right(b):
    return (b[0] + b[2], b[1] + b[3] / 2)


def left(b):
    return (b[0], b[1] + b[3] / 2)


def canvas(width, height):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def cgan_diagram(path: Path) -> None:
    fig, ax = canvas(13, 5.6)
    ax.text(0.2, 5.25, "Generator G(z, y)", fontsize=12, weight="bold")
    z = box(ax, 0.2, 4.05, 1.6, 0.7, "noise z\n(100)", "noise")
    y = box(ax, 0.2, 3.05, 1.6, 0.7, "age one-hot y\n(K groups)", "age")
    cat = box(ax, 2.4, 3.55, 1.7, 0.7, "concatenate\n(100+K)×1×1", "net")
    arrow(ax, right(z), (2.4, 3.95))
    arrow(ax, right(y), (2.4, 3.85))
    convs = box(ax, 4.7, 3.55, 4.2, 0.7, "ConvTranspose ×5 (BatchNorm, ReLU)\n1×1 → 4 → 8 → 16 → 32 → 64", "net")
    fake = box(ax, 9.5, 3.55, 1.5, 0.7, "face 3×64×64\n(tanh)", "data")
    link(ax, cat, convs, fake)

    ax.text(0.2, 2.45, "Discriminator D(x, y)", fontsize=12, weight="bold")
    x = box(ax, 0.2, 1.15, 1.6, 0.7, "face x: real,\nor from G", "data")
    stem = box(ax, 2.4, 1.15, 1.7, 0.7, "Conv 4×4, s2\nLeakyReLU", "net")
    maps = box(ax, 2.4, 0.1, 1.7, 0.7, "label maps from y\nK×32×32", "age")
    join = box(ax, 4.7, 1.15, 1.9, 0.7, "concatenate\n(32+K)×32×32", "net")
    arrow(ax, right(maps), (4.7, 1.3))
    rest = box(ax, 7.2, 1.15, 2.6, 0.7, "Conv ×3 (BatchNorm,\nLeakyReLU) → 4×4", "net")
    logit = box(ax, 10.4, 1.15, 1.6, 0.7, "Conv → 1 logit\nreal for age y?", "loss")
    link(ax, x, stem, join, rest, logit)
    ax.text(9.5, 2.9, "G's faces go to D with the age they were asked for", fontsize=8, style="italic")
    arrow(ax, (10.25, 3.55), (1.0, 1.9), colour="#999999")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def pipeline_diagram(path: Path) -> None:
    fig, ax = canvas(15.5, 4.4)
    ax.text(0.2, 4.1, "Aging a face: chapter 4 trains E; chapter 5 refines z, then redraws the face or edits the photo",
            fontsize=10, weight="bold")
    photo = box(ax, 0.2, 1.9, 1.5, 1.0, "photo", "data")
    crop = box(ax, 2.2, 1.9, 1.7, 1.0, "crop the face\n64×64", "net")
    encoder = box(ax, 4.4, 1.9, 1.7, 1.0, "encoder E\n→ first z", "net")
    refine = box(ax, 6.6, 1.9, 2.3, 1.0, "refine z:\nmin ‖G(z, y_src) − x‖²\n+ prior on ‖z‖", "loss")
    link(ax, photo, crop, encoder, refine)
    redraw = box(ax, 9.6, 3.0, 2.3, 0.8, "G(z, y_target)", "net")
    out_redraw = box(ax, 12.6, 3.0, 2.6, 0.8, "redraw: the face\ndrawn again", "data")
    change = box(ax, 9.6, 1.2, 2.3, 1.1, "change:\nG(z, y_target) − G(z, y_src)\nmask · blend · guided filter", "net")
    out_edit = box(ax, 12.6, 1.2, 2.6, 1.1, "edit (default):\nthe photo + the change", "data")
    link(ax, refine, redraw, out_redraw)
    link(ax, refine, change, out_edit)
    ax.plot([0.95, 0.95, 13.9], [1.9, 0.85, 0.85], color="#999999", linewidth=1.2)  # the photo, to the edit
    arrow(ax, (13.9, 0.85), (13.9, 1.2), colour="#999999")
    ax.text(1.1, 0.6, "the photo itself goes into the edit: its detail, background and identity stay", fontsize=8,
            style="italic", color="#666666")
    age = box(ax, 9.6, 0.05, 2.3, 0.45, "target age (slider)", "age")
    arrow(ax, (10.75, 0.5), (10.75, 1.2))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    ASSETS.mkdir(exist_ok=True)
    cgan_diagram(ASSETS / "cgan_diagram.png")
    pipeline_diagram(ASSETS / "pipeline_diagram.png")
    print("wrote", ASSETS / "cgan_diagram.png", "and", ASSETS / "pipeline_diagram.png")
