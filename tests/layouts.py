"""Tiny trees in each official dataset layout, written into a test's tmp_path (see docs/data.md)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np

RNG = np.random.default_rng(0)


def cloud(n: int, columns: int = 3) -> np.ndarray:
    return RNG.normal(size=(n, columns)).astype(np.float32)


SN_TRAIN = ["02691156-a1.npy", "02691156-a2.npy", "03001627-c1.npy"]
SN_TEST = ["03001627-c2.npy", "04379243-t1.npy"]


def shapenet55_tree(root: Path, folder: str = "shapenet_pc", lists_in: str = "ShapeNet-55", columns: int = 3) -> Path:
    (root / folder).mkdir(parents=True)
    for name in SN_TRAIN + SN_TEST:
        np.save(root / folder / name, cloud(64, columns))
    (root / lists_in).mkdir(parents=True, exist_ok=True)
    (root / lists_in / "train.txt").write_text("\n".join(SN_TRAIN) + "\n")
    (root / lists_in / "test.txt").write_text("\n".join(SN_TEST) + "\n")
    return root


MN_CLASSES = ["airplane", "night_stand", "toilet"]
MN_TRAIN = ["airplane_0001", "night_stand_0001", "night_stand_0002", "toilet_0001"]
MN_TEST = ["airplane_0002", "toilet_0002"]


def modelnet_tree(root: Path, prefix: str = "modelnet40") -> Path:
    folder = root / "modelnet40_normal_resampled"
    for name in MN_TRAIN + MN_TEST:
        cls = name.rpartition("_")[0]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        np.savetxt(folder / cls / f"{name}.txt", cloud(100, 6), delimiter=",", fmt="%.6f")
    (folder / f"{prefix}_shape_names.txt").write_text("\n".join(MN_CLASSES) + "\n")
    (folder / f"{prefix}_train.txt").write_text("\n".join(MN_TRAIN) + "\n")
    (folder / f"{prefix}_test.txt").write_text("\n".join(MN_TEST) + "\n")
    return folder


def fewshot_fold(path: Path, way: int = 2, shot: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        split: [(cloud(128, 6), label, orig) for label, orig in enumerate((8, 0)) for _ in range(n)]
        for split, n in (("train", shot), ("test", 2))
    }
    path.write_bytes(pickle.dumps(data))


def scan_h5(path: Path, samples: int = 6, points: int = 64, labels: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["data"] = RNG.normal(size=(samples, points, 3)).astype(np.float32)
        f["label"] = np.arange(samples) % 15 if labels is None else labels


def scanobjectnn_tree(root: Path) -> Path:
    h5 = root / "ScanObjectNN" / "h5_files"
    for split in ("training", "test"):
        scan_h5(h5 / "main_split" / f"{split}_objectdataset.h5")
        scan_h5(h5 / "main_split" / f"{split}_objectdataset_augmentedrot_scale75.h5", samples=9)
        scan_h5(h5 / "main_split_nobg" / f"{split}_objectdataset.h5", samples=4)
    return h5


SYNSETS = {"Airplane": "02691156", "Mug": "03797390"}


def shapenetpart_tree(root: Path) -> Path:
    folder = root / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (folder / "train_test_split").mkdir(parents=True)
    (folder / "synsetoffset2category.txt").write_text("".join(f"{c}\t{s}\n" for c, s in SYNSETS.items()))
    shapes = {"train": ["02691156/p1", "03797390/m1"], "val": ["02691156/p2"], "test": ["03797390/m2"]}
    for split, names in shapes.items():
        entries = [f"shape_data/{n}" for n in names]
        (folder / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(entries))
        for name in names:
            parts = [0, 1, 2, 3] if name.startswith("02691156") else [36, 37]
            table = np.column_stack([cloud(60, 6), np.resize(parts, 60)])
            (folder / name).parent.mkdir(exist_ok=True)
            np.savetxt(folder / f"{name}.txt", table, fmt="%.6f")
    return folder
