"""Valid files, written from scratch: the seed dataset (or checkpoint) of every target."""

from __future__ import annotations

import io
import json
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch

from act3d.models.encoder_io import save_encoder
from act3d.models.point_transformer import EncoderConfig, PointEncoder


def cloud(n: int, columns: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, columns)).astype(np.float32)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype == object)
    return buffer.getvalue()


def npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, allow_pickle=True, **arrays)
    return buffer.getvalue()


def table(array: np.ndarray, sep: str = ",") -> bytes:
    return ("\n".join(sep.join(f"{v:.6f}" for v in row) for row in array) + "\n").encode()


def h5(datasets: dict[str, Callable[[h5py.File], None] | np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, value in datasets.items():
            if callable(value):
                value(f)
            else:
                f.create_dataset(key, data=value)
    return buffer.getvalue()


def mesh_bytes(kind: str) -> bytes:
    import trimesh

    if kind == "ply-points":
        return trimesh.PointCloud(cloud(64, 3, 7)).export(file_type="ply")
    data = trimesh.creation.box(extents=(1.0, 2.0, 3.0)).export(file_type=kind)
    return data.encode() if isinstance(data, str) else data


def shapenet55_files() -> dict[str, bytes]:
    names = ["02691156-a1.npy", "02691156-a2.npy", "03001627-c1.npy"]
    files = {f"shapenet_pc/{n}": npy(cloud(64, 3, i)) for i, n in enumerate(names)}
    files["ShapeNet-55/train.txt"] = ("\n".join(names[:2]) + "\n").encode()
    files["ShapeNet-55/test.txt"] = (names[2] + "\n").encode()
    return files


MN = "modelnet40_normal_resampled"


def modelnet_files(with_cache: bool) -> dict[str, bytes]:
    files = {
        f"{MN}/modelnet10_shape_names.txt": b"chair\nnight_stand\n",
        f"{MN}/modelnet10_train.txt": b"chair_0001\nnight_stand_0001\n",
        f"{MN}/modelnet10_test.txt": b"chair_0002\n",
        f"{MN}/chair/chair_0001.txt": table(cloud(64, 6, 1)),
        f"{MN}/night_stand/night_stand_0001.txt": table(cloud(64, 6, 2)),
        f"{MN}/chair/chair_0002.txt": table(cloud(64, 6, 3)),
    }
    if with_cache:
        clouds = [cloud(64, 6, 4), cloud(64, 6, 5), cloud(48, 6, 6)]
        labels = [np.array([0], np.int32), np.array([1], np.int32), np.array([1], np.int32)]
        files[f"{MN}/modelnet10_train_8192pts_fps.dat"] = pickle.dumps([clouds, labels], protocol=4)
    return files


def fewshot_files() -> dict[str, bytes]:
    train = [(cloud(64, 6, 10 + i), i % 2, [8, 23][i % 2]) for i in range(4)]
    test = [(cloud(64, 6, 20), 1, 23)]
    return {"ModelNetFewshot/2way1shot/0.pkl": pickle.dumps({"train": train, "test": test}, protocol=4)}


SCAN = "h5_files/main_split/training_objectdataset.h5"


def scanobjectnn_files() -> dict[str, bytes]:
    data = np.stack([cloud(64, 3, 30 + i) for i in range(4)])
    return {SCAN: h5({"data": data, "label": np.array([0, 3, 14, 7], np.uint8)})}


PART = "shapenetcore_partanno_segmentation_benchmark_v0_normal"


def part_cloud(parts: list[int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    array = np.concatenate([cloud(64, 6, seed), rng.choice(parts, (64, 1)).astype(np.float32)], axis=1)
    return table(array, " ")


def shapenetpart_files() -> dict[str, bytes]:
    entries = ["shape_data/02691156/a1", "shape_data/03797390/m1"]
    return {
        f"{PART}/synsetoffset2category.txt": b"Airplane\t02691156\nMug\t03797390\n",
        f"{PART}/train_test_split/shuffled_train_file_list.json": json.dumps(entries).encode(),
        f"{PART}/02691156/a1.txt": part_cloud([0, 1, 2, 3], 40),
        f"{PART}/03797390/m1.txt": part_cloud([36, 37], 41),
    }


FOLDER_KINDS = {  # suffix -> how a valid file of it is made
    ".npy": lambda: npy(cloud(64, 3, 50)),
    ".npz": lambda: npz(points=cloud(64, 3, 51)),
    ".txt": lambda: table(cloud(64, 3, 52)),
    ".xyz": lambda: table(cloud(64, 3, 53), " "),
    ".off": lambda: mesh_bytes("off"),
    ".obj": lambda: mesh_bytes("obj"),
    ".stl": lambda: mesh_bytes("stl"),
    ".ply": lambda: mesh_bytes("ply"),
}


def folder_files(suffix: str) -> dict[str, bytes]:
    return {f"chair/a{suffix}": FOLDER_KINDS[suffix](), "lamp/b.npy": npy(cloud(64, 3, 54))}


def npz_files() -> dict[str, bytes]:
    points = np.stack([cloud(64, 3, 60 + i) for i in range(4)])
    return {"classes.txt": b"chair\nlamp\ntable\n", "train.npz": npz(points=points, labels=np.array([0, 2, 1, 1]))}


TINY_ENCODER = EncoderConfig(dim=8, depth=1, num_heads=2, num_groups=4, group_size=4)


def _torch_bytes(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def checkpoint_files() -> dict[str, bytes]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    state = {
        "model": model.state_dict(),
        "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
        "epoch": 2,
        "step_in_epoch": 0,
        "global_step": 16,
        "best_metric": 51.5,
        "history": [{"epoch": 1, "acc": 40.0}],
        "rng": [{"torch": torch.get_rng_state()}],
        "config": {"task": "classify", "train": {"epochs": 3}},
    }
    return {"ckpt-last.pth": _torch_bytes(state)}


def encoder_files() -> dict[str, bytes]:
    torch.manual_seed(0)
    encoder = PointEncoder(**TINY_ENCODER.model_dump())
    with tempfile.TemporaryDirectory() as tmp:
        save_encoder(encoder, TINY_ENCODER, Path(tmp) / "encoder.pth", source="fuzz seed")
        return {"encoder.pth": (Path(tmp) / "encoder.pth").read_bytes()}
