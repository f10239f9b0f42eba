"""Readers of the official layouts (spec section 3), on tiny fakes written into tmp_path."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from act3d.data import ModelNet40, ModelNetFewShot, ScanObjectNN, ShapeNet55, ShapeNetPart, build_dataset
from act3d.data.scanobjectnn import CLASSES as SCAN_CLASSES
from act3d.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def _cloud(n: int, columns: int = 3) -> np.ndarray:
    return RNG.normal(size=(n, columns)).astype(np.float32)


def _check_item(item: dict[str, torch.Tensor], npoints: int) -> None:
    assert item["points"].shape == (npoints, 3) and item["points"].dtype == torch.float32
    assert item["label"].shape == () and item["label"].dtype == torch.int64


# ---------------------------------------------------------------- ShapeNet-55
SN_TRAIN = ["02691156-a1.npy", "02691156-a2.npy", "03001627-c1.npy"]
SN_TEST = ["03001627-c2.npy", "04379243-t1.npy"]


def _shapenet55(root: Path, folder: str = "shapenet_pc", lists_in: str = "ShapeNet-55", columns: int = 3) -> Path:
    (root / folder).mkdir(parents=True)
    for name in SN_TRAIN + SN_TEST:
        np.save(root / folder / name, _cloud(64, columns))
    (root / lists_in).mkdir(parents=True, exist_ok=True)
    (root / lists_in / "train.txt").write_text("\n".join(SN_TRAIN) + "\n")
    (root / lists_in / "test.txt").write_text("\n".join(SN_TEST) + "\n")
    return root


def test_shapenet55_reads_splits(tmp_path: Path) -> None:
    root = _shapenet55(tmp_path / "ShapeNet55-34")
    train, test, both = (ShapeNet55(root, s, npoints=32) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(both)) == (3, 2, 5)
    assert train.classes == test.classes == ["02691156", "03001627", "04379243"]
    assert train.labels.tolist() == [0, 0, 1] and test.labels.tolist() == [1, 2]
    item = both[4]
    _check_item(item, 32)
    assert item["label"] == 2 and torch.allclose(item["points"].norm(dim=1).max(), torch.tensor(1.0))


def test_shapenet55_layout_variants(tmp_path: Path) -> None:
    """The DATASET.md folder name (6 columns: first 3 used) and split lists copied into root."""
    root = _shapenet55(tmp_path, folder="shapenet_pc_masksurf_with_normal", lists_in=".", columns=6)
    ds = ShapeNet55(root, "train", npoints=16)
    assert len(ds) == 3 and ds[0]["points"].shape == (16, 3)
    subset = tmp_path / "mine.txt"
    subset.write_text(SN_TEST[1] + "\n")
    assert ShapeNet55(root, "train", subset_file=subset).labels.tolist() == [2]


def test_shapenet55_missing_split_list_says_where_to_get_it(tmp_path: Path) -> None:
    root = _shapenet55(tmp_path)
    (root / "ShapeNet-55" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"ShapeNet-55/test\.txt: does not exist.*no split lists.*Point-MAE"):
        ShapeNet55(root, "all")
    assert len(ShapeNet55(root, "train")) == 3


def test_shapenet55_missing_cloud_is_named(tmp_path: Path) -> None:
    root = _shapenet55(tmp_path)
    (root / "shapenet_pc" / SN_TRAIN[1]).unlink()
    with pytest.raises(DataError, match=rf"{SN_TRAIN[1]}: does not exist but is listed in .*train\.txt \(1 of 3"):
        ShapeNet55(root, "train")
    with pytest.raises(DataError, match=r"is not a ShapeNet-55 folder.*shapenet_pc"):
        ShapeNet55(tmp_path / "elsewhere", "train")
    with pytest.raises(ConfigError, match="split must be one of"):
        ShapeNet55(root, "val")


# ---------------------------------------------------------------- ModelNet
MN_CLASSES = ["airplane", "night_stand", "toilet"]
MN_TRAIN = ["airplane_0001", "night_stand_0001", "night_stand_0002", "toilet_0001"]
MN_TEST = ["airplane_0002", "toilet_0002"]


def _modelnet(root: Path, prefix: str = "modelnet40") -> Path:
    folder = root / "modelnet40_normal_resampled"
    for name in MN_TRAIN + MN_TEST:
        cls = name.rpartition("_")[0]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        np.savetxt(folder / cls / f"{name}.txt", _cloud(100, 6), delimiter=",", fmt="%.6f")
    (folder / f"{prefix}_shape_names.txt").write_text("\n".join(MN_CLASSES) + "\n")
    (folder / f"{prefix}_train.txt").write_text("\n".join(MN_TRAIN) + "\n")
    (folder / f"{prefix}_test.txt").write_text("\n".join(MN_TEST) + "\n")
    return folder


def test_modelnet40_reads_txt_files(tmp_path: Path) -> None:
    folder = _modelnet(tmp_path)
    for root in (tmp_path, folder):  # the folder itself or its parent
        ds = ModelNet40(root, "train", npoints=50, sampling="random")
        assert len(ds) == 4 and ds.classes == MN_CLASSES and ds.labels.tolist() == [0, 1, 1, 2]
        _check_item(ds[1], 50)
    ds = ModelNet40(tmp_path, "test", npoints=50, use_normals=True, normalize=False, sampling="first")
    source = np.loadtxt(folder / "toilet" / "toilet_0002.txt", delimiter=",")
    np.testing.assert_allclose(ds[1]["points"], source[:50, :3], atol=1e-5)
    np.testing.assert_allclose(ds[1]["normals"], source[:50, 3:], atol=1e-5)


def test_modelnet10_uses_its_own_lists(tmp_path: Path) -> None:
    _modelnet(tmp_path, prefix="modelnet10")
    assert len(ModelNet40(tmp_path, "test", num_category=10, sampling="random")) == 2
    with pytest.raises(DataError, match=r"modelnet40_shape_names\.txt"):
        ModelNet40(tmp_path, "test")


def test_modelnet40_reads_the_official_cache_safely(tmp_path: Path) -> None:
    folder = _modelnet(tmp_path)
    clouds = [_cloud(200, 6) for _ in range(3)]
    labels = [np.array([k], dtype=np.int32) for k in (2, 0, 1)]
    (folder / "modelnet40_test_8192pts_fps.dat").write_bytes(pickle.dumps([clouds, labels]))
    ds = ModelNet40(tmp_path, "test", npoints=200, normalize=False)
    assert len(ds) == 3 and ds.labels.tolist() == [2, 0, 1]
    np.testing.assert_array_equal(ds[0]["points"], clouds[0][:, :3])
    labels[1] = np.array([7], dtype=np.int32)
    (folder / "modelnet40_test_8192pts_fps.dat").write_bytes(pickle.dumps([clouds, labels]))
    with pytest.raises(DataError, match=r"8192pts_fps\.dat: label 7 of sample 1 is outside 0\.\.2"):
        ModelNet40(tmp_path, "test")


def test_modelnet40_bad_inputs(tmp_path: Path) -> None:
    folder = _modelnet(tmp_path)
    (folder / "modelnet40_train.txt").write_text("airplane_0001\nchair_0001\n")
    with pytest.raises(DataError, match=r"modelnet40_train\.txt: line 2 'chair_0001' has class 'chair', which is not"):
        ModelNet40(tmp_path, "train")
    (folder / "modelnet40_train.txt").write_text("airplane_0001\nairplane_0003\n")
    with pytest.raises(DataError, match=r"airplane_0003\.txt: does not exist but is listed in"):
        ModelNet40(tmp_path, "train")
    np.savetxt(folder / "airplane" / "airplane_0002.txt", np.full((5, 6), np.nan), delimiter=",")
    with pytest.raises(DataError, match=r"airplane_0002\.txt: contains 30 NaN values"):
        ModelNet40(tmp_path, "test", sampling="random")[0]
    with pytest.raises(ConfigError, match="num_category"):
        ModelNet40(tmp_path, "test", num_category=20)


def _fewshot_fold(path: Path, way: int = 2, shot: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        split: [(_cloud(128, 6), label, orig) for label, orig in enumerate((8, 0)) for _ in range(n)]
        for split, n in (("train", shot), ("test", 2))
    }
    path.write_bytes(pickle.dumps(data))


@pytest.mark.parametrize("folder", ["5way10shot", "5way_10shot"])
def test_modelnet_fewshot_reads_both_folder_names(tmp_path: Path, folder: str) -> None:
    _fewshot_fold(tmp_path / "ModelNetFewshot" / folder / "3.pkl")
    ds = ModelNetFewShot(tmp_path, way=5, shot=10, fold=3, split="train", npoints=64, sampling="random")
    assert len(ds) == 6 and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.classes == ["chair", "airplane", "class_2", "class_3", "class_4"]
    _check_item(ds[5], 64)
    assert len(ModelNetFewShot(tmp_path / "ModelNetFewshot", 5, 10, 3, "test")) == 4


def test_modelnet_fewshot_malicious_pickle(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "5way10shot" / "0.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps({"train": [(Evil(), 0, 0)]}))
    with pytest.raises(DataError, match=r"0\.pkl: unsafe pickle: refers to '(posix|nt)\.system'"):
        ModelNetFewShot(tmp_path, 5, 10, 0, "train")
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- ScanObjectNN
def _h5(path: Path, samples: int = 6, points: int = 64, labels: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["data"] = RNG.normal(size=(samples, points, 3)).astype(np.float32)
        f["label"] = np.arange(samples) % 15 if labels is None else labels


def _scanobjectnn(root: Path) -> Path:
    h5 = root / "ScanObjectNN" / "h5_files"
    for split in ("training", "test"):
        _h5(h5 / "main_split" / f"{split}_objectdataset.h5")
        _h5(h5 / "main_split" / f"{split}_objectdataset_augmentedrot_scale75.h5", samples=9)
        _h5(h5 / "main_split_nobg" / f"{split}_objectdataset.h5", samples=4)
    return h5


@pytest.mark.parametrize(("variant", "count"), [("OBJ_BG", 6), ("OBJ_ONLY", 4), ("PB_T50_RS", 9), ("pb_t50_rs", 9)])
def test_scanobjectnn_variants_and_roots(tmp_path: Path, variant: str, count: int) -> None:
    h5 = _scanobjectnn(tmp_path)
    for root in (h5.parent, h5, h5 / "main_split", h5 / "main_split_nobg"):
        ds = ScanObjectNN(root, variant, "train", npoints=64)
        assert len(ds) == count and ds.classes == SCAN_CLASSES and ds.num_classes == 15
    item = ds[3]
    _check_item(item, 64)
    assert item["label"] == 3
    np.testing.assert_array_equal(item["points"], ds.points[3])  # 2048 of 2048 in the real files: no-op


def test_scanobjectnn_bad_files(tmp_path: Path) -> None:
    h5 = _scanobjectnn(tmp_path)
    target = h5 / "main_split" / "test_objectdataset.h5"
    target.write_bytes(RNG.bytes(2048))
    with pytest.raises(DataError, match=r"test_objectdataset\.h5: is not a readable HDF5 file"):
        ScanObjectNN(h5, "OBJ_BG", "test")
    with h5py.File(target, "w") as f:
        f["data"] = np.zeros((2, 8, 3), np.float32)
    with pytest.raises(DataError, match=r"test_objectdataset\.h5: has no dataset 'label'"):
        ScanObjectNN(h5, "OBJ_BG", "test")
    _h5(target, samples=3, labels=np.array([0, 15, 2]))
    with pytest.raises(DataError, match=r"test_objectdataset\.h5: label 15 of sample 1 is outside 0\.\.14"):
        ScanObjectNN(h5, "OBJ_BG", "test")
    with pytest.raises(ConfigError, match="variant must be one of"):
        ScanObjectNN(h5, "OBJ_XX", "test")
    with pytest.raises(DataError, match="is not a ScanObjectNN folder"):
        ScanObjectNN(tmp_path / "nowhere", "OBJ_BG", "test")


# ---------------------------------------------------------------- ShapeNetPart
SYNSETS = {"Airplane": "02691156", "Mug": "03797390"}


def _shapenetpart(root: Path) -> Path:
    folder = root / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (folder / "train_test_split").mkdir(parents=True)
    (folder / "synsetoffset2category.txt").write_text("".join(f"{c}\t{s}\n" for c, s in SYNSETS.items()))
    shapes = {"train": ["02691156/p1", "03797390/m1"], "val": ["02691156/p2"], "test": ["03797390/m2"]}
    for split, names in shapes.items():
        entries = [f"shape_data/{n}" for n in names]
        (folder / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(entries))
        for name in names:
            parts = [0, 1, 2, 3] if name.startswith("02691156") else [36, 37]
            table = np.column_stack([_cloud(60, 6), np.resize(parts, 60)])
            (folder / name).parent.mkdir(exist_ok=True)
            np.savetxt(folder / f"{name}.txt", table, fmt="%.6f")
    return folder


def test_shapenetpart_reads_parts(tmp_path: Path) -> None:
    folder = _shapenetpart(tmp_path)
    ds = ShapeNetPart(tmp_path, "trainval", npoints=40)
    assert len(ds) == 3 and ds.labels.tolist() == [0, 11, 0]
    assert ds.num_classes == 16 and ds.num_parts == 50 and ds.part_classes["Mug"] == [36, 37]
    item = ds[1]
    _check_item(item, 40)
    assert item["parts"].shape == (40,) and set(item["parts"].tolist()) <= {36, 37}
    # parts stay aligned with their points: the file's rows, subsampled then normalised
    raw = ShapeNetPart(folder, "trainval", npoints=60, sampling="first", normalize=False)[1]
    table = np.loadtxt(folder / "03797390" / "m1.txt")
    np.testing.assert_allclose(raw["points"], table[:, :3], atol=1e-5)
    np.testing.assert_array_equal(raw["parts"], table[:, 6])
    # fewer points than npoints: every point once, then repeats
    big = ShapeNetPart(tmp_path, "test", npoints=100)[0]
    assert big["points"].shape == (100, 3) and len(torch.unique(big["points"], dim=0)) == 60
    assert [len(ShapeNetPart(tmp_path, s)) for s in ("train", "val", "test")] == [2, 1, 1]


def test_shapenetpart_bad_part_id(tmp_path: Path) -> None:
    folder = _shapenetpart(tmp_path)
    table = np.column_stack([_cloud(5, 6), [36, 37, 5, 36, 37]])
    np.savetxt(folder / "03797390" / "m2.txt", table, fmt="%.6f")
    with pytest.raises(DataError, match=r"m2\.txt: has part id 5 \(1 points\), which is not a part of Mug"):
        ShapeNetPart(tmp_path, "test")[0]
    np.savetxt(folder / "03797390" / "m2.txt", _cloud(5, 6), fmt="%.6f")
    with pytest.raises(DataError, match=r"m2\.txt: has 6 columns, expected 7"):
        ShapeNetPart(tmp_path, "test")[0]


def test_shapenetpart_bad_lists(tmp_path: Path) -> None:
    folder = _shapenetpart(tmp_path)
    (folder / "train_test_split" / "shuffled_val_file_list.json").write_text('["shape_data/99999999/x"]')
    with pytest.raises(DataError, match=r"shuffled_val_file_list\.json: lists synset 99999999"):
        ShapeNetPart(tmp_path, "val")
    (folder / "train_test_split" / "shuffled_val_file_list.json").write_text("{not json")
    with pytest.raises(DataError, match=r"shuffled_val_file_list\.json: is not valid JSON"):
        ShapeNetPart(tmp_path, "val")
    (folder / "train_test_split" / "shuffled_test_file_list.json").unlink()
    with pytest.raises(DataError, match=r"shuffled_test_file_list\.json: split list does not exist"):
        ShapeNetPart(tmp_path, "test")
    (folder / "synsetoffset2category.txt").write_text("Spaceship\t01234567\n")
    with pytest.raises(DataError, match=r"synsetoffset2category\.txt: line 1 .* 16 ShapeNetPart categories"):
        ShapeNetPart(tmp_path, "train")


def test_default_fps_matches_ops_and_is_cached(tmp_path: Path) -> None:
    from act3d.ops import farthest_point_sample

    _modelnet(tmp_path)
    ds = ModelNet40(tmp_path, "train", npoints=24, normalize=False)
    item = ds[2]
    raw = torch.from_numpy(np.loadtxt(ds.files[2], delimiter=",", dtype=np.float32)[:, :3])
    expected = raw[farthest_point_sample(raw[None], 24)[0]]
    torch.testing.assert_close(item["points"], expected)
    assert list(ds._fps_cache) == [2]
    torch.testing.assert_close(ds[2]["points"], expected)


def test_in_memory_clouds_of_different_sizes_get_per_cloud_fps(tmp_path: Path) -> None:
    from act3d.ops import farthest_point_sample

    folder = _modelnet(tmp_path)
    clouds = [_cloud(n, 6) for n in (200, 150, 90, 300)]
    labels = [np.array([k], dtype=np.int32) for k in (2, 0, 1, 1)]
    (folder / "modelnet40_test_8192pts_fps.dat").write_bytes(pickle.dumps([clouds, labels]))
    ds = ModelNet40(tmp_path, "test", npoints=100, normalize=False)
    item = ds[1]
    assert sorted(ds._fps_cache) == [0, 1, 3]  # every cloud at once; cloud 2 keeps its 90 points
    for i in range(4):
        raw = torch.from_numpy(clouds[i][:, :3])
        expected = raw[farthest_point_sample(raw[None], 100)[0]] if len(raw) > 100 else raw[torch.arange(100) % 90]
        torch.testing.assert_close(ds[i]["points"], expected)
    torch.testing.assert_close(item["points"], ds[1]["points"])


def test_build_dataset_official_names(tmp_path: Path) -> None:
    _shapenet55(tmp_path / "sn")
    _modelnet(tmp_path / "mn")
    _modelnet(tmp_path / "mn10", prefix="modelnet10")
    _fewshot_fold(tmp_path / "fs" / "10way20shot" / "1.pkl")
    scan = _scanobjectnn(tmp_path / "so")
    _shapenetpart(tmp_path / "sp")
    built = {
        "shapenet55": build_dataset("shapenet55", str(tmp_path / "sn"), "all", 32),
        "modelnet40": build_dataset("modelnet40", str(tmp_path / "mn"), "test", 32, sampling="random"),
        "modelnet10": build_dataset("modelnet10", str(tmp_path / "mn10"), "train", 32, sampling="random"),
        "modelnet_fewshot": build_dataset(
            "modelnet_fewshot", str(tmp_path / "fs"), "test", 32, way=10, shot=20, fold=1
        ),
        "scanobjectnn": build_dataset("scanobjectnn", str(scan), "test", 64, variant="OBJ_ONLY"),
        "shapenetpart": build_dataset("shapenetpart", str(tmp_path / "sp"), "val", 32),
    }
    assert [len(ds) for ds in built.values()] == [5, 2, 4, 4, 4, 1]
    assert built["modelnet_fewshot"].num_classes == 10 and built["modelnet10"].num_classes == 3
