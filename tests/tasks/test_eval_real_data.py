"""Downstream evaluation on the real ModelNet10 dev set: a linear SVM on the features of a short stage-II
run's encoder, and a short fine-tune from that checkpoint with voting, both far above chance (~10 %)."""

from __future__ import annotations

import json

import pytest

from act3d.engine.config import load_config
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.pretrain import PretrainConfig, PretrainTask
from act3d.tasks.runner import train_task
from act3d.tasks.svm import SvmConfig, run_svm
from helpers import SHARED_MODELNET10, TINY_ENCODER

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

REAL = [f"data.root={SHARED_MODELNET10}", "data.name=npz", "data.npoints=256"]


@pytest.fixture(scope="module")
def point_mae_encoder(tmp_path_factory):
    """encoder.pth of a short stage-II run with the Point-MAE objective (no stage-I teacher needed)."""
    if not SHARED_MODELNET10.is_dir():
        pytest.skip(f"{SHARED_MODELNET10} not present")
    out = tmp_path_factory.mktemp("stage2")
    config = load_config(
        PretrainConfig,
        None,
        [
            *TINY_ENCODER,
            *REAL,
            "objective=point_mae",
            "data.train_split=train",
            "data.batch_size=16",
            "decoder_heads=2",
            "svm_eval=false",
            "scheduler.warmup_epochs=0",
            "train.epochs=1",
            "train.max_steps_per_epoch=30",
            "train.precision=fp32",
            f"run.output_dir={out}",
            "run.name=stage2",
        ],
    )
    run_dir, _ = train_task(config, PretrainTask, show_progress=False)
    return run_dir / "encoder.pth"


def test_linear_svm_on_a_short_point_mae_stage2_encoder_beats_chance(point_mae_encoder, tmp_path):
    config = SvmConfig.model_validate(
        {
            "init": str(point_mae_encoder),
            "data": {"name": "npz", "root": str(SHARED_MODELNET10), "npoints": 256, "batch_size": 64},
            "run": {"output_dir": str(tmp_path), "name": "svm"},
        }
    )
    results = json.loads((run_svm(config, device="cpu") / "results.json").read_text())
    acc = results["rows"]["linear SVM"]["acc"]
    print(f"linear SVM accuracy on ModelNet10, short Point-MAE stage-II encoder: {acc:.2f} %")
    assert acc > 40.0, results  # 10 classes, chance ≈ 10-11 %
    assert results["train_items"] == 3991 and results["test_items"] == 908
    assert str(point_mae_encoder) in results["init"]


def test_short_finetune_from_the_checkpoint_beats_chance_and_reports_the_vote(point_mae_encoder, tmp_path):
    config = load_config(
        ClassifyConfig,
        None,
        [
            *TINY_ENCODER,
            *REAL,
            f"init={point_mae_encoder}",
            "data.train_npoints=300",
            "data.batch_size=32",
            "data.augment.scale_translate=true",
            "vote.enabled=true",
            "vote.passes=2",
            "optimizer.lr=0.002",
            "scheduler.warmup_epochs=0",
            "train.epochs=1",
            "train.max_steps_per_epoch=80",
            "train.precision=fp32",
            "train.bn_recalibration_batches=10",
            f"run.output_dir={tmp_path}",
            "run.name=finetune",
        ],
    )
    run_dir, result = train_task(config, ClassificationTask, show_progress=False)
    print(f"fine-tune: acc {result.final_metrics['acc']:.2f} %, acc_vote {result.final_metrics['acc_vote']:.2f} %")
    assert result.final_metrics["acc"] > 40.0, result.final_metrics
    assert result.final_metrics["acc_vote"] > 40.0, result.final_metrics
    results = json.loads((run_dir / "results.json").read_text())
    assert results["init"] == str(point_mae_encoder)
    assert results["acc_vote"] == "mean logits over 2 augmented passes"
