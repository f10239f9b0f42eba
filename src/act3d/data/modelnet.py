"""ModelNet40 / ModelNet10 (``modelnet40_normal_resampled``) and the ModelNet40 few-shot folds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from act3d.data.base import PointCloudDataset, check_split, find_marker
from act3d.data.io import (
    PathLike,
    check_cloud,
    check_files_exist,
    check_labels,
    read_lines,
    read_point_file,
    safe_pickle_load,
)
from act3d.data.transforms import Item
from act3d.errors import ConfigError, DataError

FOLDER = "modelnet40_normal_resampled"
FEWSHOT_FOLDER = "ModelNetFewshot"
CACHE_POINTS = 8192
# The order of modelnet40_shape_names.txt: few-shot folds store original labels as indices into it.
MODELNET40_CLASSES = [
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone",
    "cup", "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard",
    "lamp", "laptop", "mantel", "monitor", "night_stand", "person", "piano", "plant", "radio",
    "range_hood", "sink", "sofa", "stairs", "stool", "table", "tent", "toilet", "tv_stand", "vase",
    "wardrobe", "xbox",
]  # fmt: skip


def _label(value: Any, path: Path, sample: int) -> int:
    """An int from a label stored as int, numpy scalar or array of shape (1,)."""
    array = np.asarray(value)
    if array.size != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(path, f"label of sample {sample} is {value!r}, expected one integer")
    return int(array.reshape(()))


def _cloud(value: Any, path: Path, sample: int, columns: int) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise DataError(path, f"sample {sample} is a {type(value).__name__}, expected a numpy array")
    check_cloud(value, path, columns, sample=sample)
    return value


def _item(cloud: np.ndarray, use_normals: bool) -> dict[str, np.ndarray]:
    """Split a (P, >=3 or >=6) cloud into points and, when asked, normals."""
    item = {"points": cloud[:, :3].astype(np.float32, copy=False)}
    if use_normals:
        item["normals"] = cloud[:, 3:6].astype(np.float32, copy=False)
    return item


class ModelNet40(PointCloudDataset):
    """ModelNet40 (or ModelNet10 with ``num_category=10``) from ``modelnet40_normal_resampled``.

    ``root`` is that folder or its parent. It holds ``modelnet{C}_shape_names.txt``,
    ``modelnet{C}_{train,test}.txt`` (lines like ``night_stand_0001``: class = text before the last
    '_') and ``<class>/<name>.txt`` (10,000 lines ``x,y,z,nx,ny,nz``). When the official cache
    ``modelnet{C}_{split}_8192pts_fps.dat`` exists (and ``npoints <= 8192``) it is read instead,
    safely, once. Default: FPS to ``npoints`` (ACT's test protocol; for training take
    ``npoints=1200`` and ``transforms.Subsample(1024, 'random')``), then unit-sphere normalisation.
    ``use_normals`` adds ``"normals"`` (N, 3) to items.
    """

    def __init__(
        self,
        root: PathLike,
        split: str,
        npoints: int = 1024,
        use_normals: bool = False,
        num_category: int = 40,
        sampling: str = "fps",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        check_split(split, ("train", "test"), "ModelNet")
        if num_category not in (10, 40):
            raise ConfigError(f"ModelNet num_category must be 10 or 40, got {num_category}")
        root = Path(root)
        self.prefix = f"modelnet{num_category}"
        names_file = find_marker([root, root / FOLDER], [f"{self.prefix}_shape_names.txt"], "ModelNet")
        self.folder = names_file.parent
        self.split, self.use_normals = split, use_normals
        self.classes = read_lines(names_file, "class list")
        self.files: list[Path] = []
        cache = self.folder / f"{self.prefix}_{split}_{CACHE_POINTS}pts_fps.dat"
        if cache.is_file() and npoints <= CACHE_POINTS:
            self._read_cache(cache)
        else:
            self._read_split(self.folder / f"{self.prefix}_{split}.txt")

    def _read_split(self, split_file: Path) -> None:
        index = {c: i for i, c in enumerate(self.classes)}
        labels = []
        for k, name in enumerate(read_lines(split_file, "split list"), 1):
            cls = name.rpartition("_")[0]
            if cls not in index:
                raise DataError(
                    split_file,
                    f"line {k} {name!r} has class {cls!r}, which is not in {self.prefix}_shape_names.txt",
                )
            self.files.append(self.folder / cls / f"{name}.txt")
            labels.append(index[cls])
        if not labels:
            raise DataError(split_file, "lists no samples")
        check_files_exist(self.files, split_file)
        self.labels = np.array(labels, dtype=np.int64)

    def _read_cache(self, cache: Path) -> None:
        data = safe_pickle_load(cache)
        pair = isinstance(data, list | tuple) and len(data) == 2
        if not (pair and all(isinstance(d, list | tuple) for d in data) and len(data[0]) == len(data[1])):
            raise DataError(cache, "is not a pair [list of point arrays, list of labels] of equal lengths")
        if not data[0]:
            raise DataError(cache, "holds no samples")
        columns = 6 if self.use_normals else 3
        self.memory_clouds = [_cloud(v, cache, i, columns) for i, v in enumerate(data[0])]
        labels = np.array([_label(v, cache, i) for i, v in enumerate(data[1])], dtype=np.int64)
        self.labels = check_labels(labels, cache, len(labels), self.num_classes, f"{self.prefix}_shape_names.txt")

    def _load(self, index: int) -> dict[str, np.ndarray]:
        columns = 6 if self.use_normals else 3
        if self.memory_clouds is not None:
            cloud = self.memory_clouds[index]
        else:
            cloud = read_point_file(self.files[index])
            if cloud.shape[1] < columns:
                raise DataError(self.files[index], f"has {cloud.shape[1]} columns, expected {columns} (with normals)")
        return _item(cloud, self.use_normals)


class ModelNetFewShot(PointCloudDataset):
    """One ModelNet40 few-shot fold: ``ModelNetFewshot/<way>way<shot>shot/<fold>.pkl``.

    ``root`` is ``ModelNetFewshot`` or its parent. The official code reads ``<way>way_<shot>shot``
    while its DATASET.md shows ``<way>way<shot>shot``: both are accepted. The pickle, read safely,
    is ``{'train': [(points 8192 x 6, label 0..way-1, ModelNet40 label)], 'test': [...]}``;
    ``classes[label]`` is the ModelNet40 name of its shapes (``class_<k>`` if a label has none in
    this split). Default: FPS to ``npoints`` (the official runner's FPS 1024), then unit-sphere
    normalisation.
    """

    def __init__(
        self,
        root: PathLike,
        way: int,
        shot: int,
        fold: int,
        split: str,
        npoints: int = 1024,
        use_normals: bool = False,
        sampling: str = "fps",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        check_split(split, ("train", "test"), "ModelNetFewShot")
        root = Path(root)
        folder = find_marker(
            [root, root / FEWSHOT_FOLDER],
            [f"{way}way{shot}shot", f"{way}way_{shot}shot"],
            "ModelNet few-shot",
        )
        self.path = folder / f"{fold}.pkl"
        self.split, self.use_normals = split, use_normals
        data = safe_pickle_load(self.path)
        if not (isinstance(data, dict) and isinstance(data.get(split), list | tuple)):
            raise DataError(self.path, f"is not a dict holding a list of samples under {split!r}")
        if not data[split]:
            raise DataError(self.path, f"holds no samples under {split!r}")
        columns = 6 if use_normals else 3
        clouds, labels, names = [], [], {}
        for i, entry in enumerate(data[split]):
            if not (isinstance(entry, list | tuple) and len(entry) == 3):
                raise DataError(self.path, f"sample {i} is not a (points, label, original label) triple")
            clouds.append(_cloud(entry[0], self.path, i, columns))
            labels.append(_label(entry[1], self.path, i))
            original = _label(entry[2], self.path, i)
            if not 0 <= original < len(MODELNET40_CLASSES):
                raise DataError(self.path, f"original label {original} of sample {i} is not a ModelNet40 class")
            names.setdefault(labels[-1], MODELNET40_CLASSES[original])
        self.labels = check_labels(np.array(labels), self.path, len(labels), way, f"a {way}-way fold")
        self.classes = [names.get(k, f"class_{k}") for k in range(way)]
        self.memory_clouds = clouds

    def _load(self, index: int) -> dict[str, np.ndarray]:
        return _item(self.memory_clouds[index], self.use_normals)
