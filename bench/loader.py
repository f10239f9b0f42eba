"""Data-loader throughput per task at paper settings, next to the training step's, on this machine.

    python bench/loader.py            # the three paper loaders and their steps (CPU: a few minutes)
    python bench/loader.py --quick    # smaller fake datasets, fewer batches

Each loader reads a fake dataset written in the official layout into a temporary folder, at the
paper's sizes: ShapeNet-55 (8192-point ``.npy`` clouds, a random 1024 per sample), ScanObjectNN
(an HDF5 of 2048-point clouds, all 2048 in a random order) and ModelNet40 (its ``.dat`` cache of
8192-point clouds, FPS to 1200 then a random 1024). It is built exactly as the task builds it (the
preset's data section, augmentation, batch size and workers, ``make_loader``). Reported: the first
batch (worker start-up and the FPS cache) and the samples/s of the next batches; then the samples/s
of the task's paper-size training step (bench/train.py's case, its CPU batch, measured in a child
process), and the ratio loader ÷ step: below 1 the step waits for data.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

import train as train_bench  # bench/train.py: this script's folder is on sys.path
from act3d.engine.config import DataConfig, load_config
from act3d.engine.loader import ResumableSampler, make_loader
from act3d.presets import resolve_preset
from act3d.tasks.classify import ClassifyConfig
from act3d.tasks.common import train_and_test_sets
from act3d.tasks.pretrain import PretrainConfig


def shapenet55(root: Path, samples: int, rng: np.random.Generator) -> Path:
    (root / "shapenet_pc").mkdir(parents=True)
    (root / "ShapeNet-55").mkdir()
    names = [f"{2691156 + i % 55:08d}-m{i}.npy" for i in range(samples)]
    for name in names:
        np.save(root / "shapenet_pc" / name, rng.normal(size=(8192, 3)).astype(np.float32))
    for split in ("train", "test"):
        (root / "ShapeNet-55" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


def scanobjectnn(root: Path, samples: int, rng: np.random.Generator) -> Path:
    folder = root / "h5_files" / "main_split"
    folder.mkdir(parents=True)
    for split in ("training", "test"):
        with h5py.File(folder / f"{split}_objectdataset.h5", "w") as f:
            f["data"] = rng.normal(size=(samples, 2048, 3)).astype(np.float32)
            f["label"] = np.arange(samples) % 15
    return root


def modelnet40(root: Path, samples: int, rng: np.random.Generator) -> Path:
    folder = root / "modelnet40_normal_resampled"
    folder.mkdir(parents=True)
    (folder / "modelnet40_shape_names.txt").write_text("\n".join(f"class{i}" for i in range(40)) + "\n")
    for split in ("train", "test"):
        clouds = [rng.normal(size=(8192, 6)).astype(np.float32) for _ in range(samples)]
        labels = [np.array([i % 40]) for i in range(samples)]
        (folder / f"modelnet40_{split}_8192pts_fps.dat").write_bytes(pickle.dumps([clouds, labels]))
    return root


LOADERS: dict[str, tuple[str, type, Callable[[Path, int, np.random.Generator], Path], str]] = {
    # name: (preset, config class, fake-data writer, bench/train.py case of its paper step)
    "ShapeNet-55 pretraining (8192 → random 1024)": (
        "act_pretrain_shapenet55",
        PretrainConfig,
        shapenet55,
        "stage II, paper (12×384 student, 64×32)",
    ),
    "ScanObjectNN fine-tuning (2048, random order)": (
        "finetune_scan_objbg",
        ClassifyConfig,
        scanobjectnn,
        "fine-tune, ScanObjectNN size (2048 pts, 128×32)",
    ),
    "ModelNet40 fine-tuning (cache 8192 → FPS 1200 → 1024)": (
        "finetune_modelnet40",
        ClassifyConfig,
        modelnet40,
        "fine-tune, paper (1024 pts, 64×32)",
    ),
}


def loader_rate(data: DataConfig, batches: int) -> tuple[float, float, int]:
    """(first batch seconds, samples/s over the next ``batches`` batches, workers) of the training loader."""
    train, _ = train_and_test_sets(data, seed=0)
    sampler = ResumableSampler(train, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = make_loader(train, data.batch_size, sampler, data.num_workers, seed=0)
    tic = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - tic
    tic, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(it)["points"])
    return first, seen / (time.perf_counter() - tic), data.num_workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256, help="clouds per fake split (at least the batches')")
    parser.add_argument("--batches", type=int, default=6, help="timed batches after the first")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.batches = 32, 1
    rng = np.random.default_rng(0)
    print(
        "| loader | workers | batch | first batch s | loader samples/s | step samples/s (CPU batch) | loader ÷ step |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (preset, schema, write, case) in LOADERS.items():
            root = Path(tmp) / preset
            extra = ["teacher_checkpoint=unused.pth"] if schema is PretrainConfig else []  # only data is read
            config = load_config(schema, resolve_preset(preset), [f"data.root={root}", *extra])
            write(root, max(args.samples, (args.batches + 1) * config.data.batch_size), rng)
            first, rate, workers = loader_rate(config.data, args.batches)
            step = train_bench.child(case, argparse.Namespace(device="cpu", steps=1 if args.quick else 2), False, None)
            step_rate = step["batch"] / step["seconds"] if isinstance(step, dict) else float("nan")
            print(
                f"| {name} | {workers} | {config.data.batch_size} | {first:.1f} | {rate:.0f} | "
                f"{step_rate:.1f} | {rate / step_rate:.1f} |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
