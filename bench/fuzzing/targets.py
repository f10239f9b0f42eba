"""The targets: each reader with its valid files, the files that may be damaged, and how it is read."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from act3d.data import build_dataset
from act3d.engine.checkpoint import load_checkpoint
from act3d.models.encoder_io import load_encoder
from act3d.models.point_transformer import PointEncoder

from .cases import BadOutputError, Case
from .checks import NPOINTS, check_dataset
from .mutation import mutated
from .strategies import (
    checkpoint_cases,
    dat_cases,
    encoder_cases,
    fewshot_cases,
    folder_cases,
    modelnet_txt_cases,
    npz_dataset_cases,
    scanobjectnn_cases,
    shapenet55_cases,
    shapenetpart_cases,
)
from .valid_files import (
    FOLDER_KINDS,
    MN,
    PART,
    SCAN,
    checkpoint_files,
    encoder_files,
    fewshot_files,
    folder_files,
    modelnet_files,
    npz_files,
    scanobjectnn_files,
    shapenet55_files,
    shapenetpart_files,
)


@dataclass
class Target:
    name: str
    what: str  # the reader, in words (for the table)
    seed: Callable[[], dict[str, bytes]]
    mutable: tuple[str, ...]
    load: Callable[[Path], None]
    structured: Callable[[Path], st.SearchStrategy[Case]]  # marker -> strategy
    _seed_cache: dict[str, bytes] | None = field(default=None, repr=False)

    def seed_files(self) -> dict[str, bytes]:
        if self._seed_cache is None:
            self._seed_cache = self.seed()
        return self._seed_cache

    def cases(self, marker: Path) -> st.SearchStrategy[Case]:
        return st.one_of(mutated(self.seed_files(), self.mutable), self.structured(marker))


def _dataset_loader(name: str, split: str, **options) -> Callable[[Path], None]:
    return lambda root: check_dataset(build_dataset(name, os.fspath(root), split, NPOINTS, **options))


def _load_checkpoint(root: Path) -> None:
    state = load_checkpoint(root / "ckpt-last.pth")
    if not isinstance(state, dict):
        raise BadOutputError(f"load_checkpoint returned a {type(state).__name__}")


def _load_encoder(root: Path) -> None:
    encoder = load_encoder(root / "encoder.pth")
    if not isinstance(encoder, PointEncoder):
        raise BadOutputError(f"load_encoder returned a {type(encoder).__name__}")


def _folder_target(suffix: str) -> Target:
    return Target(
        f"folder{suffix}",
        f"FolderDataset, {suffix} files",
        lambda: folder_files(suffix),
        (f"chair/a{suffix}",),
        _dataset_loader("folder", None),
        lambda marker: folder_cases(suffix),
    )


TARGETS: list[Target] = [
    Target(
        "shapenet55",
        "ShapeNet-55 (.npy clouds + split lists)",
        shapenet55_files,
        ("shapenet_pc/02691156-a1.npy", "shapenet_pc/03001627-c1.npy", "ShapeNet-55/train.txt"),
        _dataset_loader("shapenet55", "all"),
        lambda marker: shapenet55_cases(),
    ),
    Target(
        "modelnet-txt",
        "ModelNet (text clouds + lists)",
        lambda: modelnet_files(with_cache=False),
        (f"{MN}/chair/chair_0001.txt", f"{MN}/modelnet10_train.txt", f"{MN}/modelnet10_shape_names.txt"),
        _dataset_loader("modelnet10", "train", use_normals=True),
        lambda marker: modelnet_txt_cases(),
    ),
    Target(
        "modelnet-dat",
        "ModelNet .dat cache (restricted pickle)",
        lambda: modelnet_files(with_cache=True),
        (f"{MN}/modelnet10_train_8192pts_fps.dat",),
        _dataset_loader("modelnet10", "train", use_normals=True),
        dat_cases,
    ),
    Target(
        "fewshot-pkl",
        "ModelNet few-shot .pkl (restricted pickle)",
        fewshot_files,
        ("ModelNetFewshot/2way1shot/0.pkl",),
        _dataset_loader("modelnet_fewshot", "train", way=2, shot=1, fold=0, use_normals=True),
        fewshot_cases,
    ),
    Target(
        "scanobjectnn-h5",
        "ScanObjectNN HDF5",
        scanobjectnn_files,
        (SCAN,),
        _dataset_loader("scanobjectnn", "train", variant="OBJ_BG"),
        lambda marker: scanobjectnn_cases(),
    ),
    Target(
        "shapenetpart",
        "ShapeNetPart (text + JSON lists)",
        shapenetpart_files,
        (
            f"{PART}/02691156/a1.txt",
            f"{PART}/train_test_split/shuffled_train_file_list.json",
            f"{PART}/synsetoffset2category.txt",
        ),
        _dataset_loader("shapenetpart", "train", use_normals=True),
        lambda marker: shapenetpart_cases(),
    ),
    *[_folder_target(suffix) for suffix in FOLDER_KINDS],
    Target(
        "npz",
        "NpzDataset (one .npz per split)",
        npz_files,
        ("train.npz", "classes.txt"),
        _dataset_loader("npz", "train"),
        lambda marker: npz_dataset_cases(),
    ),
    Target(
        "checkpoint",
        "engine.checkpoint.load_checkpoint",
        checkpoint_files,
        ("ckpt-last.pth",),
        _load_checkpoint,
        lambda marker: checkpoint_cases(marker, "ckpt-last.pth"),
    ),
    Target(
        "encoder",
        "models.encoder_io.load_encoder",
        encoder_files,
        ("encoder.pth",),
        _load_encoder,
        encoder_cases,
    ),
]
TARGETS_BY_NAME = {t.name: t for t in TARGETS}
