"""Tiny configurations and subprocess helpers shared by the training tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELNET10 = Path(os.environ.get("ACT3D_SHARED_DATA", REPO.parent / "shared" / "data")) / "modelnet10"

TINY_ENCODER = [
    "model.dim=32",
    "model.depth=2",
    "model.num_heads=2",
    "model.num_groups=16",
    "model.group_size=16",
    "model.drop_path=0.0",
]
TINY_SYNTHETIC = [
    "data.name=synthetic",
    "data.root=null",
    "data.npoints=256",
    "data.batch_size=8",
    "data.options={num_per_class: 6}",
    "train.precision=fp32",
    "train.bn_recalibration_batches=10",
]


def act3d(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m act3d.cli ...`` in a subprocess; fail loudly with its output."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "act3d.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
    assert proc.returncode == 0, f"act3d {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc
