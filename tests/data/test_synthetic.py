"""The built-in procedural shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from act3d.data import SyntheticShapes
from act3d.data.synthetic import SHAPES, generate_shape


def test_classes_and_parts() -> None:
    ds = SyntheticShapes("train", npoints=256, num_per_class=3)
    assert ds.num_classes >= 10 and len(ds) == 3 * ds.num_classes
    assert ds.labels.tolist() == np.repeat(np.arange(ds.num_classes), 3).tolist()
    ids = [i for parts in ds.part_classes.values() for i in parts]
    assert ids == list(range(ds.num_parts)) and len(ds.part_names) == ds.num_parts
    assert ds.part_names[ds.part_classes["chair"][0]] == "chair/seat"
    assert all(len(parts) >= 2 for parts in ds.part_classes.values())
    seen: dict[str, set[int]] = {c: set() for c in ds.classes}
    for i in range(len(ds)):
        item = ds[i]
        cls = ds.classes[item["label"]]
        assert item["points"].shape == (256, 3) and item["points"].dtype == torch.float32
        assert item["parts"].shape == (256,) and item["parts"].dtype == torch.int64
        assert set(item["parts"].tolist()) <= set(ds.part_classes[cls])
        seen[cls] |= set(item["parts"].tolist())
        assert torch.allclose(item["points"].norm(dim=1).max(), torch.tensor(1.0))
        assert item["points"].mean(0).abs().max() < 1e-5
    assert sum(len(s) for s in seen.values()) >= ds.num_parts - 3  # nearly every part shows up


def test_deterministic_per_seed_and_split() -> None:
    a, b = SyntheticShapes("train", 128, 2), SyntheticShapes("train", 128, 2)
    torch.testing.assert_close(a[5], b[5])
    other_seed, test = SyntheticShapes("train", 128, 2, seed=1), SyntheticShapes("test", 128, 2)
    for other in (other_seed, test):
        assert not torch.equal(a[5]["points"], other[5]["points"])


def test_intra_class_variation() -> None:
    """Proportions really vary: the height/width ratio of chairs and tables spreads widely."""
    for name in ("chair", "table", "airplane", "lamp"):
        ratios = []
        for k in range(20):
            points, _ = generate_shape(name, np.random.default_rng([7, k]), 512, occlusion=0.0)
            extent = np.ptp(points, axis=0)
            ratios.append(extent[1] / extent[[0, 2]].max())
        assert np.std(ratios) / np.mean(ratios) > 0.08, name


def test_occlusion_removes_one_side() -> None:
    full, _ = generate_shape("table", np.random.default_rng(3), 2048, occlusion=0.0)
    cut, _ = generate_shape("table", np.random.default_rng(3), 2048, occlusion=1.0)
    assert cut.shape == full.shape

    # a cut shape is lopsided: its centroid moves away from its bounding-box centre
    def offset(p: np.ndarray) -> float:
        centre = (p.max(0) + p.min(0)) / 2
        return float(np.linalg.norm((p.mean(0) - centre)[[0, 2]]) / np.ptp(p, axis=0).max())

    assert offset(cut) > offset(full)


def test_rotation_keeps_up_axis() -> None:
    a, _ = generate_shape("car", np.random.default_rng(4), 256, occlusion=0.0)
    b, _ = generate_shape("car", np.random.default_rng(4), 256, occlusion=0.0, rotate=True)
    np.testing.assert_allclose(a[:, 1], b[:, 1], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a[:, [0, 2]], axis=1), np.linalg.norm(b[:, [0, 2]], axis=1), atol=1e-5)


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    for k in range(10 * len(SHAPES)):
        generate_shape(list(SHAPES)[k % len(SHAPES)], np.random.default_rng(k), 1024)
    per_shape = (time.perf_counter() - start) / (10 * len(SHAPES))
    assert per_shape < 0.01, f"{per_shape * 1e3:.1f} ms per shape"


def test_batches_through_a_dataloader() -> None:
    loader = DataLoader(SyntheticShapes("test", 64, 2), batch_size=8, shuffle=True)
    batch = next(iter(loader))
    assert batch["points"].shape == (8, 64, 3) and batch["label"].shape == (8,) and batch["parts"].shape == (8, 64)


@pytest.mark.parametrize("bad", [{"split": "val"}, {"split": "train", "npoints": 0}])
def test_bad_arguments(bad: dict) -> None:
    from act3d.errors import ConfigError

    with pytest.raises(ConfigError):
        SyntheticShapes(**bad)
