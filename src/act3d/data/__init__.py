"""Datasets for the official layouts, your own folders and npz files, built-in synthetic shapes.

Every dataset yields ``{"points": float32 (npoints, 3), "label": int64 ()}`` (part-segmentation
datasets add ``"parts"`` int64 (npoints,)) and has ``classes``, ``num_classes`` and ``labels``.
Layouts and defaults: docs/data.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from act3d.data.base import PartDataset, PointCloudDataset
from act3d.data.folder import FolderDataset
from act3d.data.io import check_cloud, read_point_file, safe_pickle_load
from act3d.data.modelnet import ModelNet40, ModelNetFewShot
from act3d.data.npz import NpzDataset
from act3d.data.scanobjectnn import ScanObjectNN
from act3d.data.shapenet55 import ShapeNet55
from act3d.data.shapenetpart import ShapeNetPart
from act3d.data.synthetic import SyntheticShapes
from act3d.data.transforms import (
    Compose,
    Jitter,
    RotateUp,
    ScaleAndTranslate,
    Subsample,
)
from act3d.errors import ConfigError, DataError
from act3d.ops.normalize import normalize_unit_sphere

# name -> constructor taking (root, split, npoints, **kwargs)
DATASETS: dict[str, Callable[..., PointCloudDataset]] = {
    "shapenet55": ShapeNet55,
    "modelnet40": ModelNet40,
    "modelnet10": lambda root, split, npoints, **kw: ModelNet40(root, split, npoints, num_category=10, **kw),
    "modelnet_fewshot": lambda root, split, npoints, **kw: ModelNetFewShot(root, split=split, npoints=npoints, **kw),
    "scanobjectnn": lambda root, split, npoints, **kw: ScanObjectNN(root, split=split, npoints=npoints, **kw),
    "shapenetpart": ShapeNetPart,
    "folder": FolderDataset,
    "npz": NpzDataset,
    "synthetic": lambda root, split, npoints, **kw: SyntheticShapes(split, npoints, **kw),
}


def build_dataset(name: str, root: str | None, split: str, npoints: int, **kwargs: Any) -> PointCloudDataset:
    """The dataset ``name`` (a key of :data:`DATASETS`); ``kwargs`` go to its constructor.

    ``root`` is ignored by 'synthetic'; 'scanobjectnn' needs ``variant``, 'modelnet_fewshot'
    needs ``way``, ``shot`` and ``fold``. A split without samples raises DataError.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if root is None and name != "synthetic":
        raise ConfigError(f"dataset {name!r} needs a root folder")
    try:
        dataset = DATASETS[name](root, split, npoints, **kwargs)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        option = str(err).rsplit("argument", 1)[-1].strip()
        raise ConfigError(
            f"dataset {name!r} has no option {option} (data.options: {sorted(kwargs)}); a preset's options "
            "for another dataset are cleared with data.options={}"
        ) from None
    if len(dataset) == 0:
        raise DataError(root, f"split {split!r} of dataset {name!r} has no samples")
    return dataset


__all__ = [
    "DATASETS",
    "Compose",
    "FolderDataset",
    "Jitter",
    "ModelNet40",
    "ModelNetFewShot",
    "NpzDataset",
    "PartDataset",
    "PointCloudDataset",
    "RotateUp",
    "ScaleAndTranslate",
    "ScanObjectNN",
    "ShapeNet55",
    "ShapeNetPart",
    "Subsample",
    "SyntheticShapes",
    "build_dataset",
    "check_cloud",
    "normalize_unit_sphere",
    "read_point_file",
    "safe_pickle_load",
]
