"""The run folder: resolved config, environment record (seed, versions, git commit, hardware, command)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from act3d.engine.checkpoint import atomic_path
from act3d.engine.config import config_to_yaml

RECORDED_PACKAGES = ("act3d", "torch", "torchvision", "timm", "numpy", "scikit-learn", "h5py", "transformers")


def make_run_dir(output_dir: str | Path, name: str | None, preset: str | Path | None) -> Path:
    """Create (or reuse, for ``--resume``) ``<output_dir>/<name>``; the default name is preset + time."""
    if name is None:
        stem = Path(preset).stem if preset else "run"
        name = f"{stem}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(output_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def record_run(run_dir: Path, config: BaseModel, seed: int) -> None:
    """Write ``config.yaml`` and ``environment.json`` into the run folder (atomically)."""
    write_text_atomic(run_dir / "config.yaml", config_to_yaml(config))
    write_text_atomic(run_dir / "environment.json", json.dumps(environment(seed), indent=2))


def environment(seed: int) -> dict[str, object]:
    """What is needed to reproduce a run: seed, command line, git commit, versions and hardware."""
    return {
        "seed": seed,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "cwd": os.getcwd(),
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in RECORDED_PACKAGES},
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Data-loader workers are seeded per sample instead."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`act3d.engine.checkpoint.atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
