"""The engine on a real small task (classification from scratch): resume, DDP, non-finite loss."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from act3d.engine.checkpoint import load_checkpoint
from act3d.engine.config import load_config
from act3d.engine.logger import read_metrics
from act3d.errors import TrainingError
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.runner import train_task
from helpers import REPO, TINY_ENCODER, TINY_SYNTHETIC, act3d

BASE = [*TINY_ENCODER, *TINY_SYNTHETIC, "train.epochs=3", "scheduler.warmup_epochs=1", "head_dropout=0.0"]


def final_weights(run_dir):
    return load_checkpoint(run_dir / "ckpt-last.pth")["model"]


def assert_same_weights(a, b, atol=0.0, parameters_only=False):
    assert a.keys() == b.keys()
    for key in a:
        if parameters_only and ("running_" in key or "num_batches_tracked" in key):
            continue
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    args = ["classify", *BASE, "train.checkpoint_every_steps=1", f"run.output_dir={tmp_path}"]
    act3d(*args, "run.name=straight", "--no-progress")
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "act3d.cli", *args, "run.name=killed", "--no-progress"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline:  # kill inside the second epoch, after some mid-epoch checkpoints
        lines = (killed / "metrics.jsonl").read_text().splitlines() if (killed / "metrics.jsonl").exists() else []
        if sum('"epoch": 1' in line for line in lines) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(killed / "ckpt-last.pth")
    assert state["epoch"] < 3, "the run finished before it was killed: the test proves nothing"
    act3d("classify", "--resume", str(killed), "--no-progress")
    assert_same_weights(final_weights(killed), final_weights(tmp_path / "straight"), atol=1e-6)
    # the replayed steps replace, not duplicate, the killed run's log
    steps = [r["step"] for r in read_metrics(killed / "metrics.jsonl") if "train/loss" in r]
    assert (
        steps
        == sorted(set(steps))
        == [r["step"] for r in read_metrics(tmp_path / "straight" / "metrics.jsonl") if "train/loss" in r]
    )


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    args = [*BASE, "train.epochs=2", "data.batch_size=8", f"run.output_dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29533",
        "-m",
        "act3d.cli",
        "classify",
        *args,
        "run.name=ddp",
        "--device",
        "cpu",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one process, the same global batch of 8 split into the same two micro-batches of 4
    act3d("classify", *args, "run.name=single", "train.grad_accum_steps=2", "--device", "cpu", "--no-progress")
    # BatchNorm running statistics are per device (as in the official code without --sync_bn): rank 0
    # keeps those of its half of each batch, so only the trained parameters are compared.
    assert_same_weights(
        final_weights(tmp_path / "ddp"), final_weights(tmp_path / "single"), atol=2e-5, parameters_only=True
    )


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    config = load_config(ClassifyConfig, None, [*BASE, f"run.output_dir={tmp_path}", "run.name=nan"])

    class Exploding(ClassificationTask):
        def training_step(self, model, batch, global_step):
            loss, logs = super().training_step(model, batch, global_step)
            return (loss * float("nan") if global_step == 9 else loss), logs

    with pytest.raises(TrainingError, match=r"non-finite loss.*global step 10.*ckpt-last\.pth"):
        train_task(config, Exploding, show_progress=False)
    kept = load_checkpoint(tmp_path / "nan" / "ckpt-last.pth")
    assert kept["epoch"] == 1 and all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
