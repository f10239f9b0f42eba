"""Pictures of point clouds: inputs beside reconstructions, masked inputs beside predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def save_cloud_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str],
    path: str | Path,
    colors: Sequence[Sequence[np.ndarray | None]] | None = None,
    row_labels: Sequence[str] | None = None,
    row_scale: bool = False,
    point_size: float = 4,
) -> Path:
    """A grid of 3D scatter plots: ``rows[i][j]`` is a cloud (N, 3) drawn in row i, column j.

    ``colors[i][j]`` may give per-point values (N,) for a colour map (part labels, masks);
    ``row_labels[i]`` is written beside row i's first cloud. Each cloud is scaled to fill its plot, or,
    with ``row_scale``, every cloud of a row to the same scale (to compare sizes along a row).
    """
    n_rows, n_cols = len(rows), len(column_titles)
    fig = plt.figure(figsize=(3.2 * n_cols, 3.2 * n_rows))
    for i, row in enumerate(rows):
        row_lim = max((float(np.abs(cloud).max()) for cloud in row if cloud.size), default=0.0) if row_scale else 0.0
        for j, cloud in enumerate(row):
            ax = fig.add_subplot(n_rows, n_cols, i * n_cols + j + 1, projection="3d")
            c = None if colors is None else colors[i][j]
            # Point clouds here are y-up: draw (x, z, y) so the up axis is vertical on the page.
            ax.scatter(
                cloud[:, 0],
                cloud[:, 2],
                cloud[:, 1],
                s=point_size,
                c=c if c is not None else cloud[:, 1],
                cmap="tab20" if c is not None else "viridis",
                linewidths=0,
            )
            lim = row_lim or (float(np.abs(cloud).max()) if cloud.size else 1.0)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_zlim(-lim, lim)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(column_titles[j], fontsize=10)
            if j == 0 and row_labels is not None:
                ax.text2D(-0.05, 0.5, row_labels[i], transform=ax.transAxes, rotation=90, va="center", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
