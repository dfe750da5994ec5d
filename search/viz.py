"""Pictures of a curriculum: a steps x classes grid of its images (matplotlib, drawn off-screen)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .curriculum import Curriculum
from .files import atomic_write

MAX_COLUMNS = 20  # classes drawn (the first ones): a grid of 1,000 columns shows nothing


def save_grid(cur: Curriculum, path: str | Path, steps: int = 4, class_names: Sequence[str] = ()) -> None:
    """A steps x classes grid of the curriculum's images at the data's shape (first image of each class
    per step), the columns titled by class name."""
    import matplotlib  # noqa: PLC0415  (lazy: matplotlib, Agg backend at draw time)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  (lazy: after matplotlib.use("Agg"))

    labels = cur.targets.float().argmax(-1)
    k = min(int(cur.targets.shape[-1]), MAX_COLUMNS)
    t_total = cur.steps
    rows = sorted({round(i * (t_total - 1) / max(steps - 1, 1)) for i in range(min(steps, t_total))})
    mean = torch.tensor(cur.mean).view(-1, 1, 1)
    std = torch.tensor(cur.std).view(-1, 1, 1)
    fig, axes = plt.subplots(len(rows), k, figsize=(k * 0.9, len(rows) * 0.95), squeeze=False)
    for r, t in enumerate(rows):
        for c in range(k):
            ax = axes[r][c]
            ax.axis("off")
            idx = (labels[t] == c).nonzero()
            if len(idx):
                img = (cur.images[t, int(idx[0])].float() * std + mean).clamp(0, 1)
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
            if r == 0:
                ax.set_title(str(class_names[c]) if c < len(class_names) else str(c), fontsize=7)
        axes[r][0].text(-0.3, 0.5, f"step {t + 1}", transform=axes[r][0].transAxes, ha="right", va="center", fontsize=7)
    fig.suptitle(f"{cur.dataset} curriculum {cur.content_hash}", fontsize=9)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
