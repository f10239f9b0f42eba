"""ShapeNetPart: 16 categories, 50 parts, per-point part labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from act3d.data.base import PartDataset, check_split, find_marker
from act3d.data.io import PathLike, check_files_exist, read_lines, read_point_file, require_file
from act3d.data.transforms import Item
from act3d.errors import DataError

FOLDER = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
# The standard category -> global part ids (PointNet++ / Point-MAE ``seg_classes``).
SEG_CLASSES = {
    "Airplane": [0, 1, 2, 3], "Bag": [4, 5], "Cap": [6, 7], "Car": [8, 9, 10, 11],
    "Chair": [12, 13, 14, 15], "Earphone": [16, 17, 18], "Guitar": [19, 20, 21], "Knife": [22, 23],
    "Lamp": [24, 25, 26, 27], "Laptop": [28, 29], "Motorbike": [30, 31, 32, 33, 34, 35], "Mug": [36, 37],
    "Pistol": [38, 39, 40], "Rocket": [41, 42, 43], "Skateboard": [44, 45, 46], "Table": [47, 48, 49],
}  # fmt: skip
SPLITS = {"train": ("train",), "val": ("val",), "trainval": ("train", "val"), "test": ("test",)}


def _read_categories(path: Path) -> dict[str, str]:
    """synset -> category from ``synsetoffset2category.txt`` (lines ``Airplane<TAB>02691156``)."""
    synsets = {}
    for k, line in enumerate(read_lines(path, "category list"), 1):
        fields = line.split()
        if len(fields) != 2 or fields[0] not in SEG_CLASSES:
            raise DataError(
                path,
                f"line {k} {line!r} is not '<category> <synset>' with one of the 16 ShapeNetPart categories",
            )
        synsets[fields[1]] = fields[0]
    return synsets


def _read_split(path: Path) -> list[tuple[str, str]]:
    """(synset, model id) pairs of a split list (a JSON list of ``shape_data/<synset>/<id>``)."""
    require_file(path, "split list")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(path, f"is not valid JSON ({exc})") from None
    if not isinstance(entries, list) or not all(isinstance(e, str) and e.count("/") >= 2 for e in entries):
        raise DataError(path, "is not a JSON list of 'shape_data/<synset>/<model id>' strings")
    return [tuple(e.split("/")[-2:]) for e in entries]


class ShapeNetPart(PartDataset):
    """ShapeNetPart; ``root`` is ``shapenetcore_partanno_segmentation_benchmark_v0_normal`` or its parent.

    Files: ``<synset>/<id>.txt`` (lines ``x y z nx ny nz part``),
    ``train_test_split/shuffled_{train,val,test}_file_list.json`` and ``synsetoffset2category.txt``.
    ``split``: 'train' | 'val' | 'trainval' (ACT fine-tunes on it) | 'test'. Items add
    ``"parts"`` (N,) global part ids; ``label`` is the category index in :data:`SEG_CLASSES` order.
    Default: a random ``npoints`` subset (repeats when a shape has fewer points), then unit-sphere
    normalisation. ``use_normals`` adds ``"normals"``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str,
        npoints: int = 2048,
        use_normals: bool = False,
        sampling: str = "random",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        check_split(split, list(SPLITS), "ShapeNetPart")
        root = Path(root)
        categories = find_marker([root, root / FOLDER], ["synsetoffset2category.txt"], "ShapeNetPart")
        self.folder, self.split, self.use_normals = categories.parent, split, use_normals
        self.classes = list(SEG_CLASSES)
        self.part_classes = {c: list(p) for c, p in SEG_CLASSES.items()}
        synsets = _read_categories(categories)
        index = {c: i for i, c in enumerate(self.classes)}
        self.files: list[Path] = []
        labels = []
        for name in SPLITS[split]:
            split_file = self.folder / "train_test_split" / f"shuffled_{name}_file_list.json"
            files = []
            for synset, model in _read_split(split_file):
                if synset not in synsets:
                    raise DataError(split_file, f"lists synset {synset}, which {categories.name} does not name")
                files.append(self.folder / synset / f"{model}.txt")
                labels.append(index[synsets[synset]])
            check_files_exist(files, split_file)
            self.files += files
        if not self.files:
            raise DataError(split_file, "lists no samples")
        self.labels = np.array(labels, dtype=np.int64)

    def _load(self, index: int) -> dict[str, np.ndarray]:
        path = self.files[index]
        cloud = read_point_file(path)
        if cloud.shape[1] != 7:
            raise DataError(path, f"has {cloud.shape[1]} columns, expected 7 (x y z nx ny nz part)")
        parts = cloud[:, 6].astype(np.int64)
        category = self.classes[self.labels[index]]
        allowed = self.part_classes[category]
        bad = ~np.isin(parts, allowed) | (parts != cloud[:, 6])
        if bad.any():
            raise DataError(
                path,
                f"has part id {cloud[bad, 6][0]:g} ({int(bad.sum())} points), which is not a part of "
                f"{category} (its parts are {allowed})",
            )
        item = {"points": cloud[:, :3], "parts": parts}
        if self.use_normals:
            item["normals"] = cloud[:, 3:6]
        return item
