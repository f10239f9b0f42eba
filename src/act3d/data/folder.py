"""Your own data: a folder of class sub-folders holding point or mesh files."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from act3d.data.base import PointCloudDataset
from act3d.data.io import MESH_SUFFIXES, SUPPORTED_SUFFIXES, PathLike, read_point_file
from act3d.data.transforms import Item
from act3d.errors import DataError


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path) -> list[Path]:
    """Supported, non-hidden files directly in ``folder``, sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".")
    )


def _scan(root: Path, split: str | None) -> list[tuple[str | None, str, list[Path]]]:
    """(split, class, files) for every class folder of every split, in whichever layout ``root`` has."""
    if split is None:
        names = {p.name for p in _subdirs(root)}
        if {"train", "test"} <= names:
            raise DataError(root, "has train/ and test/ folders: pass split='train' or split='test'")
        return [(None, c.name, _files(c)) for c in _subdirs(root)]
    if (root / split).is_dir():  # root/<split>/<class>/<file>
        return [(s.name, c.name, _files(c)) for s in _subdirs(root) for c in _subdirs(s)]
    if any((c / split).is_dir() for c in _subdirs(root)):  # root/<class>/<split>/<file> (ModelNet meshes)
        return [(s.name, c.name, _files(s)) for c in _subdirs(root) for s in _subdirs(c)]
    raise DataError(
        root / split, "does not exist (expected root/<split>/<class>/<file> or root/<class>/<split>/<file>)"
    )


class FolderDataset(PointCloudDataset):
    """Point clouds or meshes in class folders; label = index of the folder name in ``classes``.

    Layouts: ``root/<class>/<file>`` (``split=None``), ``root/<split>/<class>/<file>`` or
    ``root/<class>/<split>/<file>`` (the raw ModelNet .off layout). Files: .npy .npz .txt .xyz .pts
    (first 3 columns) and meshes .ply .off .obj .stl, sampled uniformly on the surface
    (``mesh_points`` points, default ``npoints``, seeded by the file's relative path, cached in
    memory). Other files are ignored.

    ``classes`` defaults to the sorted names of the class folders holding at least one supported
    file in any split (so empty folders are not classes and every split shares label indices).
    Given explicitly, a file of this split in a folder outside it raises DataError.
    Default: FPS to ``npoints``, then unit-sphere normalisation.
    """

    def __init__(
        self,
        root: PathLike,
        split: str | None = None,
        npoints: int = 1024,
        classes: Sequence[str] | None = None,
        mesh_points: int | None = None,
        sampling: str = "fps",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        self.root, self.split = Path(root), split
        if not self.root.is_dir():
            raise DataError(self.root, "is not a folder")
        groups = _scan(self.root, split)
        if classes is None:
            self.classes = sorted({c for _, c, files in groups if files})
        else:
            self.classes = list(classes)
            unknown = [files[0] for s, c, files in groups if s == split and files and c not in self.classes]
            if unknown:
                raise DataError(unknown[0], f"is in class folder {unknown[0].parent.name!r}, not one of {self.classes}")
        index = {c: i for i, c in enumerate(self.classes)}
        ours = [(index[c], f) for s, c, files in groups if s == split for f in files]
        if not ours:
            raise DataError(
                self.root if split is None else self.root / split,
                f"has no point or mesh files in class folders (supported: {' '.join(SUPPORTED_SUFFIXES)})",
            )
        self.files = [f for _, f in ours]
        self.labels = np.array([label for label, _ in ours], dtype=np.int64)
        self.mesh_points = mesh_points or npoints
        self._meshes: dict[int, np.ndarray] = {}

    def _load(self, index: int) -> dict[str, np.ndarray]:
        path = self.files[index]
        if path.suffix.lower() not in MESH_SUFFIXES:
            return {"points": read_point_file(path)[:, :3]}
        if index not in self._meshes:
            seed = zlib.crc32(os.fsencode(path.relative_to(self.root).as_posix()))  # names may not be UTF-8
            self._meshes[index] = read_point_file(path, self.mesh_points, seed)[:, :3]
        return {"points": self._meshes[index]}
