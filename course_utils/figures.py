"""Figures the chapters share: rows of face images, each row a titled grid."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def show_image_rows(rows: list[torch.Tensor], titles: list[str], nrow: int = 8, row_height: float = 1.8) -> None:
    """Show image batches (N, 3, H, W) in [-1, 1] one under another, each as a titled grid of ``nrow`` columns."""
    if len(rows) != len(titles):
        raise ValueError(f"{len(rows)} rows but {len(titles)} titles")
    from torchvision.utils import make_grid  # imported here: torchvision's import costs seconds (torch._dynamo)

    fig, axes = plt.subplots(len(rows), 1, figsize=(12, row_height * len(rows)))
    for ax, images, title in zip(np.atleast_1d(axes), rows, titles):
        grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=1)
        ax.imshow(grid.permute(1, 2, 0).numpy())
        ax.set_title(title, loc="left", fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    plt.show()  # returns nothing: a returned figure would be drawn twice as a cell's last value
