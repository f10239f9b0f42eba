"""ACT stage I and stage II learn on real data, with a real pretrained teacher."""

from __future__ import annotations

import pytest
import torch

from act3d.engine.checkpoint import load_checkpoint
from act3d.engine.config import load_config
from act3d.models.cross_modal_teacher import CrossModalTeacher
from act3d.tasks.pretrain import PretrainConfig, PretrainTask
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig, PretrainTeacherTask
from act3d.tasks.runner import train_task
from helpers import SHARED_MODELNET10

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

REAL = [
    "data.name=npz",
    f"data.root={SHARED_MODELNET10}",
    "data.npoints=256",
    "data.batch_size=16",
    "train.precision=fp32",
    "train.bn_recalibration_batches=4",
]
STAGE1 = [
    *REAL,
    "teacher.name=dinov2_vits14_imgfocus",
    "teacher.num_blocks=2",
    "teacher.prompts=4",
    "model.num_groups=16",
    "model.group_size=16",
    "model.codebook_size=128",
    "temperature.steps=60",
    "kl_weight.delay=10",
    "kl_weight.steps=60",
    "optimizer.lr=0.001",
    "scheduler.warmup_epochs=0",
    "train.epochs=2",
    "train.max_steps_per_epoch=40",
    "train.eval_every=2",  # one evaluation (the code diagnostics decode the test split three times)
]


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory):
    if not SHARED_MODELNET10.is_dir():
        pytest.skip(f"{SHARED_MODELNET10} not present")
    out = tmp_path_factory.mktemp("act")
    config = load_config(PretrainTeacherConfig, None, [*STAGE1, f"run.output_dir={out}", "run.name=stage1"])
    run_dir, result = train_task(config, PretrainTeacherTask, show_progress=False)
    return config, run_dir, result


def test_stage1_lowers_test_chamfer_below_its_initial_value(stage1_run):
    config, run_dir, result = stage1_run
    torch.manual_seed(0)
    untrained = PretrainTeacherTask(config)
    initial = untrained.evaluate(untrained.model.eval(), torch.device("cpu"), 0)["cd_l1"]
    final = result.final_metrics["cd_l1"]
    assert final < 0.8 * initial, (initial, result.history)
    assert (run_dir / "reconstructions.png").is_file() and (run_dir / "code_swap.png").is_file()
    results = (run_dir / "results.json").read_text()
    assert "DINOv2" in results or "dinov2" in results, "the run must say which teacher it used"
    assert "first 2 of 12 blocks" in results, "the run must say that teacher blocks were dropped"


def test_stage2_loss_falls_and_the_teacher_never_changes(stage1_run, tmp_path):
    _, run_dir, _ = stage1_run
    ckpt = run_dir / "ckpt-best.pth"
    config = load_config(
        PretrainConfig,
        None,
        [
            *REAL,
            f"teacher_checkpoint={ckpt}",
            "model.dim=64",
            "model.depth=2",
            "model.num_heads=2",
            "model.num_groups=16",
            "model.group_size=16",
            "decoder_heads=2",
            "svm_eval=false",
            "scheduler.warmup_epochs=0",
            "train.epochs=2",
            "train.max_steps_per_epoch=25",
            f"run.output_dir={tmp_path}",
            "run.name=stage2",
        ],
    )
    task = PretrainTask(config)
    teacher_before = {k: v.clone() for k, v in task.teacher.state_dict().items()}
    torch.manual_seed(0)
    initial = task.evaluate(task.model.eval(), torch.device("cpu"), 0)["loss"]
    task.model.train()

    def reuse_task(cfg, run_dir):
        task.run_dir = run_dir
        return task

    _, result = train_task(config, reuse_task, show_progress=False)
    assert result.final_metrics["loss"] < initial - 0.05, (initial, result.history)
    for key, value in task.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), f"teacher changed: {key}"
    assert all(not p.requires_grad for p in task.teacher.parameters())
    assert (tmp_path / "stage2" / "encoder.pth").is_file()


def test_stage2_refuses_a_mismatched_or_missing_teacher_before_training(stage1_run, tmp_path):
    from act3d.errors import CheckpointError, ConfigError

    _, run_dir, _ = stage1_run
    with pytest.raises(ConfigError, match="16×16 patches"):
        CrossModalTeacher.from_checkpoint(run_dir / "ckpt-best.pth", num_groups=32, group_size=16)
    with pytest.raises(CheckpointError, match="not found"):
        CrossModalTeacher.from_checkpoint(tmp_path / "missing.pth", 16, 16)
    foreign = tmp_path / "foreign.pth"
    torch.save({"model": {}, "config": {"task": "classify"}}, foreign)
    with pytest.raises(CheckpointError, match="not an `act3d pretrain-teacher` checkpoint"):
        CrossModalTeacher.from_checkpoint(foreign, 16, 16)
    assert load_checkpoint(run_dir / "ckpt-best.pth")["config"]["teacher"]["num_blocks"] == 2
