"""ScanObjectNN: real scanned objects, 15 classes, three benchmark variants (HDF5 files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from act3d.data.base import PointCloudDataset, check_split, find_marker
from act3d.data.io import PathLike, check_clouds, check_labels, read_h5
from act3d.data.transforms import Item
from act3d.errors import ConfigError

CLASSES = [
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door",
    "shelf", "table", "bed", "pillow", "sink", "sofa", "toilet",
]  # fmt: skip
# variant -> (folder, file name after "training_" / "test_")
VARIANTS = {
    "OBJ_BG": ("main_split", "objectdataset.h5"),
    "OBJ_ONLY": ("main_split_nobg", "objectdataset.h5"),
    "PB_T50_RS": ("main_split", "objectdataset_augmentedrot_scale75.h5"),
}


class ScanObjectNN(PointCloudDataset):
    """One ScanObjectNN variant ('OBJ_BG' | 'OBJ_ONLY' | 'PB_T50_RS'), read fully into memory.

    Files: ``main_split/{training,test}_objectdataset.h5`` (OBJ_BG),
    ``main_split_nobg/...`` (OBJ_ONLY), ``main_split/{training,test}_objectdataset_augmentedrot_scale75.h5``
    (PB_T50_RS); keys 'data' (S, 2048, 3) and 'label' (S,). ``root`` may be ``ScanObjectNN``,
    ``ScanObjectNN/h5_files`` or the ``main_split`` folder itself (the official cfg's path).
    Default: all 2048 points, not normalised (as the official fine-tuning); with a smaller
    ``npoints``, FPS.
    """

    def __init__(
        self,
        root: PathLike,
        variant: str,
        split: str,
        npoints: int = 2048,
        sampling: str = "fps",
        normalize: bool = False,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        check_split(split, ("train", "test"), "ScanObjectNN")
        if variant.upper() not in VARIANTS:
            raise ConfigError(f"ScanObjectNN variant must be one of {list(VARIANTS)}, got {variant!r}")
        self.variant, self.split, self.classes = variant.upper(), split, list(CLASSES)
        folder, name = VARIANTS[self.variant]
        root = Path(root)
        base = find_marker([root, root / "h5_files", root.parent], [folder], "ScanObjectNN")
        self.path = base / f"{'training' if split == 'train' else 'test'}_{name}"
        arrays = read_h5(self.path, ("data", "label"))
        check_clouds(arrays["data"], self.path)
        self.points = self.memory_clouds = np.asarray(arrays["data"][..., :3], dtype=np.float32)
        self.labels = check_labels(arrays["label"], self.path, len(self.points), len(CLASSES), "ScanObjectNN")

    def _load(self, index: int) -> dict[str, np.ndarray]:
        return {"points": self.points[index]}
