"""Stage-II arms of a comparison are paired: same student initialisation, same masks at each step."""

from __future__ import annotations

import torch

from act3d.engine.config import load_config
from act3d.presets import resolve_preset
from act3d.tasks.pretrain import PretrainConfig, PretrainTask

SMALL = [
    "objective=point_mae",
    "data.options.num_per_class=2",
    "model.dim=32",
    "model.depth=1",
    "model.num_heads=2",
    "model.num_groups=16",
    "model.group_size=16",
    "decoder_heads=2",
    "svm_eval=false",
]


def _task(*overrides: str) -> PretrainTask:
    return PretrainTask(load_config(PretrainConfig, resolve_preset("pretrain_cpu"), [*SMALL, *overrides]))


def test_the_student_and_the_masks_depend_on_the_seed_and_step_only():
    torch.manual_seed(0)
    a = _task("masking.ratio=0.6")
    torch.manual_seed(123)
    torch.rand(1000)  # another arm consumes random numbers differently (a teacher's Gumbel noise, ...)
    b = _task("masking.ratio=0.6", "decoder_depth=1")
    for key, value in a.model.encoder.state_dict().items():
        assert torch.equal(value, b.model.encoder.state_dict()[key]), key
    centers = torch.randn(4, 16, 3)
    first = a.model.make_mask(centers, a.mask_generator(7))
    torch.rand(10)
    assert torch.equal(first, b.model.make_mask(centers, b.mask_generator(7)))
    assert not torch.equal(first, a.model.make_mask(centers, a.mask_generator(8)))
    other = _task("masking.ratio=0.6", "train.seed=1")
    assert not torch.equal(first, other.model.make_mask(centers, other.mask_generator(7)))
    assert not torch.equal(a.model.encoder.cls_pos, other.model.encoder.cls_pos)


def test_evaluate_writes_no_file_the_after_evaluation_hook_writes_the_encoder(tmp_path):
    config = load_config(PretrainConfig, resolve_preset("pretrain_cpu"), SMALL)
    task = PretrainTask(config, tmp_path)
    task.evaluate(task.model.eval(), torch.device("cpu"), 0)
    assert list(tmp_path.iterdir()) == []
    task.after_evaluation(task.model, torch.device("cpu"), 0)
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.pth"]
