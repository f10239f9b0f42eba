"""ShapeNet-55: the pre-training set (8192-point clouds, 55 synsets)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from act3d.data.base import PointCloudDataset, check_split, find_marker
from act3d.data.io import PathLike, check_files_exist, read_lines, read_point_file
from act3d.data.transforms import Item
from act3d.errors import DataError

POINT_FOLDERS = ("shapenet_pc", "shapenet_pc_masksurf_with_normal")
SPLIT_FOLDER = "ShapeNet-55"
SPLITS = ("train", "test", "all")


def _missing_split(root: Path, name: str) -> DataError:
    return DataError(
        root / SPLIT_FOLDER / f"{name}.txt",
        f"does not exist (nor {root / f'{name}.txt'}): the official ShapeNet-55 download has no split "
        f"lists; copy {SPLIT_FOLDER}/train.txt and test.txt from the Point-MAE repository "
        f"(data/ShapeNet55-34/{SPLIT_FOLDER}/) into {root / SPLIT_FOLDER}",
    )


def _split_file(root: Path, name: str) -> Path | None:
    """``root/ShapeNet-55/<name>.txt``, or ``root/<name>.txt`` (lists copied next to the clouds)."""
    return next((p for p in (root / SPLIT_FOLDER / f"{name}.txt", root / f"{name}.txt") if p.is_file()), None)


def _read_split(path: Path) -> list[str]:
    """File names ``<synset>-<model>.npy`` listed in a split file."""
    lines = read_lines(path, "split list")
    for k, line in enumerate(lines, 1):
        if "-" not in line or not line.endswith(".npy"):
            raise DataError(path, f"line {k} {line!r} is not of the form '<synset>-<model>.npy'")
    return lines


class ShapeNet55(PointCloudDataset):
    """ShapeNet-55 clouds; label = index of the synset among the sorted synsets of the split lists.

    Layout (``root`` = ``data/ShapeNet55-34``): ``shapenet_pc/<synset>-<model>.npy`` (8192 x 3;
    the folder may also be named ``shapenet_pc_masksurf_with_normal``, first 3 columns used) and
    ``ShapeNet-55/{train,test}.txt`` (or those two files directly in ``root``). ``split='all'`` is
    train + test (ACT stage II). ``subset_file`` replaces the split list. Default: a random
    ``npoints`` subset, then unit-sphere normalisation, as the official loader.
    """

    def __init__(
        self,
        root: PathLike,
        split: str,
        npoints: int = 1024,
        subset_file: PathLike | None = None,
        sampling: str = "random",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        check_split(split, SPLITS, "ShapeNet55")
        root = Path(root)
        self.split = split
        self.point_folder = find_marker([root], POINT_FOLDERS, "ShapeNet-55")
        standard = {name: _split_file(root, name) for name in ("train", "test")}
        if subset_file is not None:
            used = [Path(subset_file)]
        else:
            used = []
            for name in ("train", "test") if split == "all" else (split,):
                path = standard[name]
                if path is None:
                    raise _missing_split(root, name)
                used.append(path)
        lists = {path: _read_split(path) for path in {*used, *standard.values()} - {None}}
        self.files = []
        for path in used:
            files = [self.point_folder / name for name in lists[path]]
            check_files_exist(files, path)
            self.files += files
        if not self.files:
            raise DataError(used[0], "lists no samples" if len(used) == 1 else f"and {used[1].name} list no samples")
        # Synsets of every list, so that train and test share label indices.
        self.classes = sorted({name.split("-")[0] for names in lists.values() for name in names})
        index = {s: i for i, s in enumerate(self.classes)}
        self.labels = np.array([index[f.name.split("-")[0]] for f in self.files], dtype=np.int64)

    def _load(self, index: int) -> dict[str, np.ndarray]:
        return {"points": read_point_file(self.files[index])[:, :3]}
