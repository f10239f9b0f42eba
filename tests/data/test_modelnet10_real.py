"""The real ModelNet10 dev set in shared/data, read with NpzDataset (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from act3d.data import NpzDataset

COUNTS = {  # class: (train, test), from shared/data/modelnet10/README.md
    "bathtub": (106, 50),
    "bed": (515, 100),
    "chair": (889, 100),
    "desk": (200, 86),
    "dresser": (200, 86),
    "monitor": (465, 100),
    "night_stand": (200, 86),
    "sofa": (680, 100),
    "table": (392, 100),
    "toilet": (344, 100),
}

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def root(shared_data: Path) -> Path:
    root = shared_data / "modelnet10"
    if not (root / "train.npz").is_file():
        pytest.skip(f"real ModelNet10 data not found at {root} (set ACT3D_SHARED_DATA to the shared/data folder)")
    return root


@pytest.mark.parametrize(("split", "column", "total"), [("train", 0, 3991), ("test", 1, 908)])
def test_counts_classes_and_points(root: Path, split: str, column: int, total: int) -> None:
    ds = NpzDataset(root, split, npoints=1024)
    assert len(ds) == total
    assert ds.classes == list(COUNTS) and ds.num_classes == 10
    per_class = np.bincount(ds.labels, minlength=10)
    assert dict(zip(ds.classes, per_class.tolist(), strict=True)) == {c: n[column] for c, n in COUNTS.items()}
    assert ds.points.shape == (total, 1024, 3) and np.isfinite(ds.points).all()
    item = ds[0]
    assert item["points"].shape == (1024, 3) and item["points"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].shape == ()
    assert torch.allclose(item["points"].norm(dim=1).max(), torch.tensor(1.0))
