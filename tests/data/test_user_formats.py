"""FolderDataset, NpzDataset and build_dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from act3d.data import DATASETS, FolderDataset, NpzDataset, SyntheticShapes, build_dataset
from act3d.errors import ConfigError, DataError

RNG = np.random.default_rng(1)


def _points(path: Path, n: int = 50) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = RNG.normal(size=(n, 3)).astype(np.float32)
    if path.suffix == ".npy":
        np.save(path, cloud)
    else:
        np.savetxt(path, cloud, fmt="%.6f")


def _mesh(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.icosphere(subdivisions=1).export(path)


def test_folder_flat_layout(tmp_path: Path) -> None:
    _points(tmp_path / "chair" / "a.npy")
    _points(tmp_path / "chair" / "b.xyz")
    _mesh(tmp_path / "lamp" / "c.off")
    _mesh(tmp_path / "lamp" / "d.stl")
    (tmp_path / "lamp" / "notes.md").write_text("ignored")
    (tmp_path / "empty").mkdir()  # no supported file: not a class
    ds = FolderDataset(tmp_path, npoints=32, sampling="random")
    assert ds.classes == ["chair", "lamp"] and ds.labels.tolist() == [0, 0, 1, 1]
    item = ds[2]
    assert item["points"].shape == (32, 3) and item["label"] == 1
    assert torch.allclose(item["points"].norm(dim=1).max(), torch.tensor(1.0))


def test_folder_meshes_sampled_once_and_deterministically(tmp_path: Path) -> None:
    _mesh(tmp_path / "ball" / "s.obj")
    a = FolderDataset(tmp_path, npoints=64, sampling="first", normalize=False)
    first = a[0]["points"]
    assert np.allclose(first.norm(dim=1), 1.0, atol=0.1)  # on the (unit) icosphere's surface
    assert set(a._meshes) == {0}
    torch.testing.assert_close(a[0]["points"], first)
    torch.testing.assert_close(
        FolderDataset(tmp_path, npoints=64, sampling="first", normalize=False)[0]["points"], first
    )


@pytest.mark.parametrize("layout", ["split_first", "class_first"])
def test_folder_split_layouts(tmp_path: Path, layout: str) -> None:
    files = {"train": [("car", "a.npy"), ("car", "b.npy"), ("tree", "c.txt")], "test": [("tree", "d.npy")]}
    for split, entries in files.items():
        for cls, name in entries:
            path = tmp_path / split / cls / name if layout == "split_first" else tmp_path / cls / split / name
            _points(path)
    train = FolderDataset(tmp_path, "train", npoints=16, sampling="random")
    test = FolderDataset(tmp_path, "test", npoints=16, sampling="random")
    assert train.classes == test.classes == ["car", "tree"]  # 'car' is absent from test, indices still shared
    assert train.labels.tolist() == [0, 0, 1] and test.labels.tolist() == [1]
    with pytest.raises(DataError, match="does not exist"):
        FolderDataset(tmp_path, "val")
    if layout == "split_first":
        with pytest.raises(DataError, match="has train/ and test/ folders: pass split="):
            FolderDataset(tmp_path)


def test_folder_explicit_classes(tmp_path: Path) -> None:
    _points(tmp_path / "a" / "x.npy")
    _points(tmp_path / "b" / "y.npy")
    ds = FolderDataset(tmp_path, classes=["z", "b", "a"], sampling="random")
    assert ds.labels.tolist() == [2, 1] and ds.num_classes == 3
    with pytest.raises(DataError, match=r"y\.npy: is in class folder 'b', not one of \['a'\]"):
        FolderDataset(tmp_path, classes=["a"])


def test_folder_without_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.md").write_text("x")
    with pytest.raises(DataError, match=r"has no point or mesh files in class folders"):
        FolderDataset(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        FolderDataset(tmp_path / "missing")


def test_folder_bad_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "two.txt").write_text("1 2\n3 4\n")
    with pytest.raises(DataError, match=r"two\.txt: has 2 columns, expected at least 3"):
        FolderDataset(tmp_path)[0]


def _npz(root: Path, split: str = "train", points: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
    root.mkdir(exist_ok=True)
    (root / "classes.txt").write_text("cone\ncube\ncyl\n")
    points = RNG.normal(size=(5, 40, 3)).astype(np.float32) if points is None else points
    labels = np.array([0, 1, 2, 1, 0]) if labels is None else labels
    np.savez(root / f"{split}.npz", points=points, labels=labels)


def test_npz_dataset(tmp_path: Path) -> None:
    _npz(tmp_path)
    ds = NpzDataset(tmp_path, "train", npoints=40)
    assert len(ds) == 5 and ds.classes == ["cone", "cube", "cyl"] and ds.labels.tolist() == [0, 1, 2, 1, 0]
    item = ds[2]
    assert item["points"].shape == (40, 3) and item["label"] == 2
    centred = ds.points[2] - ds.points[2].mean(0)
    np.testing.assert_allclose(item["points"], centred / np.linalg.norm(centred, axis=1).max(), atol=1e-5)


def test_npz_errors(tmp_path: Path) -> None:
    bad = RNG.normal(size=(5, 40, 3)).astype(np.float32)
    bad[3, 7, 1] = np.nan
    _npz(tmp_path, points=bad)
    with pytest.raises(DataError, match=r"train\.npz: sample 3 contains 1 NaN values \(first in row 7\)"):
        NpzDataset(tmp_path, "train")
    _npz(tmp_path, labels=np.array([0, 1, 3, 1, 0]))
    with pytest.raises(
        DataError, match=r"train\.npz: label 3 of sample 2 is outside 0\.\.2 \(3 classes in .*classes\.txt"
    ):
        NpzDataset(tmp_path, "train")
    _npz(tmp_path, labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"train\.npz: has labels of shape \(2,\), expected \(5,\)"):
        NpzDataset(tmp_path, "train")
    _npz(tmp_path, points=np.zeros((5, 40, 2), np.float32))
    with pytest.raises(DataError, match=r"train\.npz: sample 0 has 2 columns"):
        NpzDataset(tmp_path, "train")
    np.savez(tmp_path / "test.npz", points=np.zeros((1, 4, 3)))
    with pytest.raises(DataError, match=r"test\.npz: has no array 'labels'"):
        NpzDataset(tmp_path, "test")
    with pytest.raises(DataError, match=r"val\.npz: split file for split 'val' does not exist"):
        NpzDataset(tmp_path, "val")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"junk\.npz: is not a valid numpy file"):
        NpzDataset(tmp_path, "junk")


def test_build_dataset(tmp_path: Path) -> None:
    assert set(DATASETS) == {
        "shapenet55", "modelnet40", "modelnet10", "modelnet_fewshot", "scanobjectnn",
        "shapenetpart", "folder", "npz", "synthetic",
    }  # fmt: skip
    ds = build_dataset("synthetic", None, "test", 128, num_per_class=2)
    assert isinstance(ds, SyntheticShapes) and len(ds) == 2 * ds.num_classes and ds[0]["points"].shape == (128, 3)
    _npz(tmp_path)
    assert len(build_dataset("npz", str(tmp_path), "train", 40)) == 5
    with pytest.raises(
        ConfigError, match=r"unknown dataset 'modelnet'; valid names: shapenet55, modelnet40, .*synthetic"
    ):
        build_dataset("modelnet", str(tmp_path), "train", 1024)
    with pytest.raises(ConfigError, match="needs a root folder"):
        build_dataset("npz", None, "train", 1024)


def test_batched_fps_cache_matches_per_cloud_fps(tmp_path):
    from act3d.data.npz import NpzDataset
    from act3d.data.transforms import subsample_indices

    rng = np.random.default_rng(0)
    points = rng.normal(size=(7, 64, 3)).astype(np.float32)
    np.savez(tmp_path / "train.npz", points=points, labels=np.arange(7) % 2)
    (tmp_path / "classes.txt").write_text("a\nb\n")
    ds = NpzDataset(tmp_path, "train", npoints=16)
    for i in range(7):
        expected = subsample_indices(torch.from_numpy(points[i]), 16, "fps")
        torch.testing.assert_close(ds._indices(i, torch.from_numpy(points[i])), expected)
