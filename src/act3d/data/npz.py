"""Whole splits in one ``.npz`` each (the format of ``shared/data/modelnet10``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from act3d.data.base import PointCloudDataset
from act3d.data.io import PathLike, check_clouds, check_labels, read_lines, read_npz, require_file
from act3d.data.transforms import Item
from act3d.errors import DataError


class NpzDataset(PointCloudDataset):
    """``<root>/<split>.npz`` with ``points`` (S, P, 3) float and ``labels`` (S,) int, and
    ``<root>/classes.txt`` (one class name a line; label = line index).

    The arrays are checked once (shapes, NaN/Inf naming the sample, labels within the classes) and
    kept in memory. Default: FPS to ``npoints`` (all points when ``npoints == P``), then unit-sphere
    normalisation (the coordinates may be raw mesh units).
    """

    def __init__(
        self,
        root: PathLike,
        split: str,
        npoints: int = 1024,
        sampling: str = "fps",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        root = Path(root)
        self.split, self.path = split, root / f"{split}.npz"
        self.classes = read_lines(root / "classes.txt", "class list")
        require_file(self.path, f"split file for split {split!r}")
        arrays = read_npz(self.path, ("points", "labels"))
        points, labels = arrays["points"], arrays["labels"]
        check_clouds(points, self.path)
        if points.shape[2] != 3:
            raise DataError(self.path, f"has points of shape {points.shape}, expected (samples, points, 3)")
        self.points = self.memory_clouds = points.astype(np.float32, copy=False)
        self.labels = check_labels(labels, self.path, len(points), len(self.classes), str(root / "classes.txt"))

    def _load(self, index: int) -> dict[str, np.ndarray]:
        return {"points": self.points[index]}
