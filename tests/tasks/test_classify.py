"""Supervised classification from scratch learns, and the run folder records everything."""

from __future__ import annotations

import json

import pytest
import yaml

from act3d.engine.config import load_config
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.runner import train_task
from helpers import SHARED_MODELNET10, TINY_ENCODER, TINY_SYNTHETIC


@pytest.mark.slow
def test_learns_builtin_shapes_and_records_the_run(tmp_path):
    config = load_config(
        ClassifyConfig,
        None,
        [
            *TINY_ENCODER,
            *TINY_SYNTHETIC,
            "data.options={num_per_class: 16}",
            "train.epochs=4",
            "scheduler.warmup_epochs=1",
            "optimizer.lr=0.002",
            f"run.output_dir={tmp_path}",
            "run.name=cls",
        ],
    )
    run_dir, result = train_task(config, ClassificationTask, show_progress=False)
    assert result.final_metrics["acc"] > 35.0, result.history  # 10 classes: chance is 10 %
    for name in (
        "config.yaml",
        "environment.json",
        "metrics.jsonl",
        "curves.png",
        "results.json",
        "results.md",
        "ckpt-best.pth",
        "ckpt-last.pth",
    ):
        assert (run_dir / name).is_file(), name
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["dim"] == 32
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["seed"] == 0 and env["packages"]["torch"] and "git_commit" in env
    results = json.loads((run_dir / "results.json").read_text())
    assert results["final_epoch"]["epoch"] == 4 and "best_epoch" in results
    assert (run_dir / "tensorboard").is_dir()


@pytest.mark.slow
@pytest.mark.shared_data
def test_learns_real_modelnet10(tmp_path):
    if not SHARED_MODELNET10.is_dir():
        pytest.skip(f"{SHARED_MODELNET10} not present")
    config = load_config(
        ClassifyConfig,
        None,
        [
            *TINY_ENCODER,
            "data.name=npz",
            f"data.root={SHARED_MODELNET10}",
            "data.npoints=256",
            "data.batch_size=32",
            "train.epochs=1",
            "train.max_steps_per_epoch=60",
            "scheduler.warmup_epochs=0",
            "optimizer.lr=0.002",
            "train.precision=fp32",
            "train.bn_recalibration_batches=10",
            f"run.output_dir={tmp_path}",
            "run.name=mn10",
        ],
    )
    _, result = train_task(config, ClassificationTask, show_progress=False)
    assert result.final_metrics["acc"] > 40.0, result.final_metrics  # chance ≈ 10-11 %
