"""Inputs at the edges: each is a clear error before any training, or a documented, tested behaviour.

See docs/reliability.md ("Inputs at the edges") for the table these tests back.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import trimesh

from act3d.cli import main
from act3d.data import FolderDataset, build_dataset, normalize_unit_sphere
from act3d.engine.config import load_config
from act3d.errors import ConfigError, DataError, TrainingError
from act3d.models.point_transformer import PointClassifier, PointEncoder
from act3d.ops import farthest_point_sample, knn
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.common import accuracy_metrics
from act3d.tasks.runner import train_task
from helpers import TINY_ENCODER, TINY_SYNTHETIC

RNG = np.random.default_rng(3)


def _cloud(n: int = 64) -> np.ndarray:
    return RNG.normal(size=(n, 3)).astype(np.float32)


def _npz_root(root: Path, points: np.ndarray, labels: np.ndarray, classes: str = "a\nb\nc\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text(classes)
    np.savez(root / "train.npz", points=points, labels=labels)
    np.savez(root / "test.npz", points=points, labels=labels)
    return root


# ---- clouds smaller than the patches ---------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "key"),
    [("model.num_groups=300", "num_groups=300"), ("model.group_size=300", "group_size=300")],
)
def test_patches_larger_than_the_cloud_stop_before_training(tmp_path, capsys, override, key):
    args = ["classify", *TINY_ENCODER, *TINY_SYNTHETIC, override, f"run.output_dir={tmp_path}", "run.name=r"]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"act3d: error: model.{key} exceeds data.npoints=256" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "metrics.jsonl").exists() and not (tmp_path / "r" / "ckpt-last.pth").exists()


def test_patch_check_covers_every_training_command(tmp_path, capsys):
    common = ["data.name=synthetic", "data.root=null", "data.npoints=32", f"run.output_dir={tmp_path}"]
    assert main(["pretrain", "objective=point_mae", "model.num_groups=64", *common, "--no-progress"]) == 2
    assert "model.num_groups=64 exceeds data.npoints=32" in capsys.readouterr().err
    assert main(["pretrain-teacher", "model.num_groups=8", "model.group_size=33", *common, "--no-progress"]) == 2
    assert "model.group_size=33 exceeds data.npoints=32" in capsys.readouterr().err


def test_patches_equal_to_the_cloud_size_are_fine():
    config = load_config(ClassifyConfig, None, [*TINY_ENCODER, *TINY_SYNTHETIC, "data.npoints=16"])
    task = ClassificationTask(config)
    points = torch.stack([task.train_set[i]["points"] for i in range(2)])
    assert points.shape == (2, 16, 3) and torch.isfinite(task.model.eval()(points)).all()


# ---- degenerate clouds ------------------------------------------------------------------------
def test_identical_points_give_finite_values_everywhere(tmp_path):
    same = torch.full((1, 64, 3), 2.5)
    assert torch.equal(normalize_unit_sphere(same), torch.zeros_like(same))  # centred; radius 0 is not divided by
    idx = farthest_point_sample(same, 16)
    assert idx.unique().numel() == 16  # distinct picks even when every distance is 0
    dists, _ = knn(same, same, 8)
    assert torch.equal(dists, torch.zeros_like(dists))
    # through a dataset: a cloud of one repeated point, and a cloud of a single point
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "same.npy", np.full((64, 3), 7.0, np.float32))
    np.save(tmp_path / "a" / "one.npy", np.array([[1.0, 2.0, 3.0]], np.float32))
    dataset = FolderDataset(tmp_path, npoints=32)
    points = torch.stack([dataset[i]["points"] for i in range(2)])
    assert torch.equal(points, torch.zeros(2, 32, 3))
    torch.manual_seed(0)
    model = PointClassifier(PointEncoder(dim=32, depth=1, num_heads=2, num_groups=8, group_size=8), 3)
    logits = model.train()(points)  # BatchNorm over identical inputs: zero variance
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(logits).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_mesh_with_all_vertices_identical_is_a_data_error(tmp_path):
    (tmp_path / "a").mkdir()
    mesh = trimesh.Trimesh(vertices=np.ones((3, 3)), faces=[[0, 1, 2]], process=False)
    mesh.export(tmp_path / "a" / "flat.obj")
    with pytest.raises(DataError, match=r"flat\.obj: is a mesh with zero surface area"):
        FolderDataset(tmp_path, npoints=32)[0]


# ---- a class present only in the test split -----------------------------------------------------
def test_class_only_in_test_is_a_class_of_both_splits_and_counts_in_accuracy(tmp_path):
    for split, classes in (("train", ["chair", "lamp"]), ("test", ["chair", "lamp", "sofa"])):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            np.save(tmp_path / split / c / "x.npy", _cloud())
    train, test = (FolderDataset(tmp_path, split, npoints=32) for split in ("train", "test"))
    assert train.classes == test.classes == ["chair", "lamp", "sofa"]  # the head gets a "sofa" output
    assert sorted(set(train.labels.tolist())) == [0, 1] and test.labels.tolist() == [0, 1, 2]
    # sofa (never trained on) is counted: wrong here, so overall 2/3 and per class (100 + 100 + 0) / 3
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]])
    metrics = accuracy_metrics(logits, torch.tensor([0, 1, 2]), 3)
    assert metrics["acc"] == pytest.approx(200 / 3) and metrics["class_acc"] == pytest.approx(200 / 3)
    # a class absent from the test labels is left out of the per-class mean (not counted as 0 %)
    metrics = accuracy_metrics(torch.tensor([[5.0, 0, 0], [0, 5.0, 0]]), torch.tensor([0, 0]), 3)
    assert metrics == {"acc": 50.0, "class_acc": 50.0}


# ---- labels out of range --------------------------------------------------------------------
@pytest.mark.parametrize("bad", [3, -1])
def test_npz_label_out_of_range(tmp_path, bad):
    root = _npz_root(tmp_path, np.stack([_cloud()] * 3), np.array([0, bad, 1]))
    with pytest.raises(DataError, match=rf"train\.npz: label {bad} of sample 1 is outside 0\.\.2 \(3 classes in"):
        build_dataset("npz", str(root), "train", 32)


def test_scanobjectnn_label_out_of_range(tmp_path):
    folder = tmp_path / "h5_files" / "main_split"
    folder.mkdir(parents=True)
    with h5py.File(folder / "training_objectdataset.h5", "w") as f:
        f["data"] = np.stack([_cloud()] * 2)
        f["label"] = np.array([3, 15])
    with pytest.raises(DataError, match=r"training_objectdataset\.h5: label 15 of sample 1 is outside 0\.\.14"):
        build_dataset("scanobjectnn", str(tmp_path), "train", 32, variant="OBJ_BG")


def test_modelnet_cache_and_fewshot_labels_out_of_range(tmp_path):
    folder = tmp_path / "modelnet40_normal_resampled"
    folder.mkdir()
    (folder / "modelnet10_shape_names.txt").write_text("chair\nsofa\n")
    clouds = [np.ones((16, 6), np.float32) * i for i in range(2)]
    cache = [clouds, [np.array([1], np.int32), np.array([2], np.int32)]]
    (folder / "modelnet10_train_8192pts_fps.dat").write_bytes(pickle.dumps(cache))
    with pytest.raises(DataError, match=r"8192pts_fps\.dat: label 2 of sample 1 is outside 0\.\.1"):
        build_dataset("modelnet10", str(tmp_path), "train", 16)
    fold = tmp_path / "ModelNetFewshot" / "2way1shot"
    fold.mkdir(parents=True)
    (fold / "0.pkl").write_bytes(pickle.dumps({"train": [(clouds[0], 2, 8)], "test": []}))
    with pytest.raises(DataError, match=r"0\.pkl: label 2 of sample 0 is outside 0\.\.1 \(2 classes in a 2-way fold"):
        build_dataset("modelnet_fewshot", str(tmp_path), "train", 16, way=2, shot=1, fold=0)


# ---- empty splits ---------------------------------------------------------------------------
def test_empty_splits_are_data_errors_naming_the_file(tmp_path):
    root = _npz_root(tmp_path / "npz", np.zeros((0, 64, 3), np.float32), np.zeros(0, np.int64))
    with pytest.raises(DataError, match=r"train\.npz: has point array of shape \(0, 64, 3\)"):
        build_dataset("npz", str(root), "train", 32)
    folder = tmp_path / "folder"
    (folder / "test" / "chair").mkdir(parents=True)
    (folder / "train" / "chair").mkdir(parents=True)
    np.save(folder / "train" / "chair" / "a.npy", _cloud())
    with pytest.raises(DataError, match=r"folder/test: has no point or mesh files in class folders"):
        build_dataset("folder", str(folder), "test", 32)
    shapenet = tmp_path / "shapenet"
    (shapenet / "shapenet_pc").mkdir(parents=True)
    np.save(shapenet / "shapenet_pc" / "02691156-a.npy", _cloud())
    (shapenet / "train.txt").write_text("02691156-a.npy\n")
    (shapenet / "test.txt").write_text("\n")
    with pytest.raises(DataError, match=r"test\.txt: lists no samples"):
        build_dataset("shapenet55", str(shapenet), "test", 32)
    fold = tmp_path / "fewshot" / "2way1shot"
    fold.mkdir(parents=True)
    (fold / "0.pkl").write_bytes(pickle.dumps({"train": [], "test": []}))
    with pytest.raises(DataError, match=r"0\.pkl: holds no samples under 'train'"):
        build_dataset("modelnet_fewshot", str(tmp_path / "fewshot"), "train", 32, way=2, shot=1, fold=0)


def test_training_set_smaller_than_one_batch_is_a_training_error(tmp_path):
    root = _npz_root(tmp_path / "data", np.stack([_cloud()] * 3), np.array([0, 1, 2]))
    overrides = [
        *TINY_ENCODER,
        "data.name=npz",
        f"data.root={root}",
        "data.npoints=32",
        "data.batch_size=8",
        "train.precision=fp32",
        f"run.output_dir={tmp_path}",
        "run.name=r",
    ]
    config = load_config(ClassifyConfig, None, overrides)
    with pytest.raises(TrainingError, match=r"the training set \(3 samples\) yields no full batch of 8"):
        train_task(config, ClassificationTask, show_progress=False)


def test_config_errors_for_bad_sizes_name_the_key():
    with pytest.raises(ConfigError, match=r"data\.npoints: Input should be greater than 0"):
        load_config(ClassifyConfig, None, ["data.npoints=0"])
