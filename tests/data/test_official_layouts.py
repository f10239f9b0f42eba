"""Readers of the official layouts (spec section 3), on tiny fakes written into tmp_path."""

from __future__ import annotations

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
from layouts import (
    MN_CLASSES,
    SN_TEST,
    SN_TRAIN,
    cloud,
    fewshot_fold,
    modelnet_tree,
    scan_h5,
    scanobjectnn_tree,
    shapenet55_tree,
    shapenetpart_tree,
)


def _check_item(item: dict[str, torch.Tensor], npoints: int) -> None:
    assert item["points"].shape == (npoints, 3) and item["points"].dtype == torch.float32
    assert item["label"].shape == () and item["label"].dtype == torch.int64


# ---------------------------------------------------------------- ShapeNet-55
def test_shapenet55_reads_splits(tmp_path: Path) -> None:
    root = shapenet55_tree(tmp_path / "ShapeNet55-34")
    train, test, both = (ShapeNet55(root, s, npoints=32) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(both)) == (3, 2, 5)
    assert train.classes == test.classes == ["02691156", "03001627", "04379243"]
    assert train.labels.tolist() == [0, 0, 1] and test.labels.tolist() == [1, 2]
    item = both[4]
    _check_item(item, 32)
    assert item["label"] == 2 and torch.allclose(item["points"].norm(dim=1).max(), torch.tensor(1.0))


def test_shapenet55_layout_variants(tmp_path: Path) -> None:
    """The DATASET.md folder name (6 columns: first 3 used) and split lists copied into root."""
    root = shapenet55_tree(tmp_path, folder="shapenet_pc_masksurf_with_normal", lists_in=".", columns=6)
    ds = ShapeNet55(root, "train", npoints=16)
    assert len(ds) == 3 and ds[0]["points"].shape == (16, 3)
    subset = tmp_path / "mine.txt"
    subset.write_text(SN_TEST[1] + "\n")
    assert ShapeNet55(root, "train", subset_file=subset).labels.tolist() == [2]


def test_shapenet55_missing_split_list_says_where_to_get_it(tmp_path: Path) -> None:
    root = shapenet55_tree(tmp_path)
    (root / "ShapeNet-55" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"ShapeNet-55/test\.txt: does not exist.*no split lists.*Point-MAE"):
        ShapeNet55(root, "all")
    assert len(ShapeNet55(root, "train")) == 3


def test_shapenet55_missing_cloud_is_named(tmp_path: Path) -> None:
    root = shapenet55_tree(tmp_path)
    (root / "shapenet_pc" / SN_TRAIN[1]).unlink()
    with pytest.raises(DataError, match=rf"{SN_TRAIN[1]}: does not exist but is listed in .*train\.txt \(1 of 3"):
        ShapeNet55(root, "train")
    with pytest.raises(DataError, match=r"is not a ShapeNet-55 folder.*shapenet_pc"):
        ShapeNet55(tmp_path / "elsewhere", "train")
    with pytest.raises(ConfigError, match="split must be one of"):
        ShapeNet55(root, "val")


# ---------------------------------------------------------------- ModelNet
def test_modelnet40_reads_txt_files(tmp_path: Path) -> None:
    folder = modelnet_tree(tmp_path)
    for root in (tmp_path, folder):  # the folder itself or its parent
        ds = ModelNet40(root, "train", npoints=50, sampling="random")
        assert len(ds) == 4 and ds.classes == MN_CLASSES and ds.labels.tolist() == [0, 1, 1, 2]
        _check_item(ds[1], 50)
    ds = ModelNet40(tmp_path, "test", npoints=50, use_normals=True, normalize=False, sampling="first")
    source = np.loadtxt(folder / "toilet" / "toilet_0002.txt", delimiter=",")
    np.testing.assert_allclose(ds[1]["points"], source[:50, :3], atol=1e-5)
    np.testing.assert_allclose(ds[1]["normals"], source[:50, 3:], atol=1e-5)


def test_modelnet10_uses_its_own_lists(tmp_path: Path) -> None:
    modelnet_tree(tmp_path, prefix="modelnet10")
    assert len(ModelNet40(tmp_path, "test", num_category=10, sampling="random")) == 2
    with pytest.raises(DataError, match=r"modelnet40_shape_names\.txt"):
        ModelNet40(tmp_path, "test")


def test_modelnet40_reads_the_official_cache_safely(tmp_path: Path) -> None:
    folder = modelnet_tree(tmp_path)
    clouds = [cloud(200, 6) for _ in range(3)]
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
    folder = modelnet_tree(tmp_path)
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


@pytest.mark.parametrize("folder", ["5way10shot", "5way_10shot"])
def test_modelnet_fewshot_reads_both_folder_names(tmp_path: Path, folder: str) -> None:
    fewshot_fold(tmp_path / "ModelNetFewshot" / folder / "3.pkl")
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
@pytest.mark.parametrize(("variant", "count"), [("OBJ_BG", 6), ("OBJ_ONLY", 4), ("PB_T50_RS", 9), ("pb_t50_rs", 9)])
def test_scanobjectnn_variants_and_roots(tmp_path: Path, variant: str, count: int) -> None:
    h5 = scanobjectnn_tree(tmp_path)
    for root in (h5.parent, h5, h5 / "main_split", h5 / "main_split_nobg"):
        ds = ScanObjectNN(root, variant, "train", npoints=64)
        assert len(ds) == count and ds.classes == SCAN_CLASSES and ds.num_classes == 15
    item = ds[3]
    _check_item(item, 64)
    assert item["label"] == 3
    np.testing.assert_array_equal(item["points"], ds.points[3])  # 2048 of 2048 in the real files: no-op


def test_scanobjectnn_bad_files(tmp_path: Path) -> None:
    h5 = scanobjectnn_tree(tmp_path)
    target = h5 / "main_split" / "test_objectdataset.h5"
    target.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(DataError, match=r"test_objectdataset\.h5: is not a readable HDF5 file"):
        ScanObjectNN(h5, "OBJ_BG", "test")
    with h5py.File(target, "w") as f:
        f["data"] = np.zeros((2, 8, 3), np.float32)
    with pytest.raises(DataError, match=r"test_objectdataset\.h5: has no dataset 'label'"):
        ScanObjectNN(h5, "OBJ_BG", "test")
    scan_h5(target, samples=3, labels=np.array([0, 15, 2]))
    with pytest.raises(DataError, match=r"test_objectdataset\.h5: label 15 of sample 1 is outside 0\.\.14"):
        ScanObjectNN(h5, "OBJ_BG", "test")
    with pytest.raises(ConfigError, match="variant must be one of"):
        ScanObjectNN(h5, "OBJ_XX", "test")
    with pytest.raises(DataError, match="is not a ScanObjectNN folder"):
        ScanObjectNN(tmp_path / "nowhere", "OBJ_BG", "test")


# ---------------------------------------------------------------- ShapeNetPart
def test_shapenetpart_reads_parts(tmp_path: Path) -> None:
    folder = shapenetpart_tree(tmp_path)
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
    folder = shapenetpart_tree(tmp_path)
    table = np.column_stack([cloud(5, 6), [36, 37, 5, 36, 37]])
    np.savetxt(folder / "03797390" / "m2.txt", table, fmt="%.6f")
    with pytest.raises(DataError, match=r"m2\.txt: has part id 5 \(1 points\), which is not a part of Mug"):
        ShapeNetPart(tmp_path, "test")[0]
    np.savetxt(folder / "03797390" / "m2.txt", cloud(5, 6), fmt="%.6f")
    with pytest.raises(DataError, match=r"m2\.txt: has 6 columns, expected 7"):
        ShapeNetPart(tmp_path, "test")[0]


def test_shapenetpart_bad_lists(tmp_path: Path) -> None:
    folder = shapenetpart_tree(tmp_path)
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

    modelnet_tree(tmp_path)
    ds = ModelNet40(tmp_path, "train", npoints=24, normalize=False)
    item = ds[2]
    raw = torch.from_numpy(np.loadtxt(ds.files[2], delimiter=",", dtype=np.float32)[:, :3])
    expected = raw[farthest_point_sample(raw[None], 24)[0]]
    torch.testing.assert_close(item["points"], expected)
    assert list(ds._fps_cache) == [2]
    torch.testing.assert_close(ds[2]["points"], expected)


def test_in_memory_clouds_of_different_sizes_get_per_cloud_fps(tmp_path: Path) -> None:
    from act3d.ops import farthest_point_sample

    folder = modelnet_tree(tmp_path)
    clouds = [cloud(n, 6) for n in (200, 150, 90, 300)]
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


def test_a_loader_with_workers_fills_the_fps_cache_first_so_workers_inherit_it(tmp_path: Path) -> None:
    from act3d.engine.loader import ResumableSampler, SeededAugment, make_loader

    folder = modelnet_tree(tmp_path)
    clouds, labels = [cloud(200, 6) for _ in range(6)], [np.array([k % 3]) for k in range(6)]
    (folder / "modelnet40_train_8192pts_fps.dat").write_bytes(pickle.dumps([clouds, labels]))
    ds = ModelNet40(tmp_path, "train", npoints=64, normalize=False)
    train = SeededAugment(ds, None, seed=0)
    sampler = ResumableSampler(train, 1, 0, shuffle=False, seed=0)
    make_loader(train, 2, sampler, num_workers=0, seed=0)
    assert not ds._fps_cache, "without workers the cache fills lazily, in this process"
    loader = make_loader(train, 2, sampler, num_workers=1, seed=0)
    assert sorted(ds._fps_cache) == list(range(6))
    batch = next(iter(loader))
    torch.testing.assert_close(batch["points"][1], ds[1]["points"])


def test_build_dataset_official_names(tmp_path: Path) -> None:
    shapenet55_tree(tmp_path / "sn")
    modelnet_tree(tmp_path / "mn")
    modelnet_tree(tmp_path / "mn10", prefix="modelnet10")
    fewshot_fold(tmp_path / "fs" / "10way20shot" / "1.pkl")
    scan = scanobjectnn_tree(tmp_path / "so")
    shapenetpart_tree(tmp_path / "sp")
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


def test_an_option_of_another_dataset_is_a_config_error_saying_how_to_clear_it(tmp_path: Path) -> None:
    root = modelnet_tree(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset 'modelnet40' has no option 'num_per_class'.*data\.options=\{\}"):
        build_dataset("modelnet40", str(root), "train", 32, num_per_class=3)
