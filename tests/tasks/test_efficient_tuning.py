"""Parameter-efficient fine-tuning (`classify mode=lora|prompt`): what trains, what stays, and that it learns."""

from __future__ import annotations

import re

import pytest
import torch

from act3d.engine.config import load_config
from act3d.models.parameter_efficient import add_deep_prompts, add_lora, train_only
from act3d.models.point_transformer import PointEncoder
from act3d.tasks.classify import ClassificationTask, ClassifyConfig
from act3d.tasks.runner import train_task
from helpers import SHARED_MODELNET10, TINY_ENCODER, TINY_SYNTHETIC


def tiny_encoder(depth: int = 2) -> PointEncoder:
    torch.manual_seed(0)
    return PointEncoder(dim=32, depth=depth, num_heads=2, num_groups=8, group_size=8, drop_path=0.0).eval()


def features(encoder: PointEncoder) -> torch.Tensor:
    torch.manual_seed(1)
    with torch.no_grad():
        return encoder(torch.rand(2, 128, 3))


def test_lora_starts_as_the_pretrained_encoder_and_adapts_exactly_the_named_layers():
    encoder = tiny_encoder()
    before = features(encoder)
    adapters = add_lora(encoder, rank=4, alpha=8, dropout=0.0, targets=["attn.qkv", "mlp.fc2"])
    assert torch.equal(features(encoder), before), "B is zero-initialised: no change before training"
    names = [n for n, _ in encoder.named_parameters() if ".lora_" in n]
    assert len(adapters) == len(names) == 2 * 2 * 2, "A and B for 2 layers in each of 2 blocks"
    assert all(".attn.qkv." in n or ".mlp.fc2." in n for n in names)
    assert {n for n in encoder.state_dict() if ".lora_" not in n} >= {"blocks.blocks.0.attn.qkv.base_layer.weight"}


def test_deep_prompts_change_the_features_and_keep_the_token_count():
    encoder = tiny_encoder()
    before = features(encoder)
    add_deep_prompts(encoder, count=3, dropout=0.0)
    assert encoder.blocks.prompts.shape == (2, 3, 32)
    after = features(encoder)
    assert after.shape == before.shape and not torch.allclose(after, before)
    layer, _ = encoder.layer_features(torch.rand(2, 128, 3), [1, 2])
    assert [x.shape for x in layer] == [(2, 8, 32)] * 2, "prompts are dropped after every block"


@pytest.mark.parametrize("mode", ["lora", "prompt"])
def test_only_adapters_head_and_cls_train_and_the_frozen_weights_do_not_move(tmp_path, mode):
    overrides = [*TINY_ENCODER, *TINY_SYNTHETIC, f"mode={mode}", "train.epochs=1", "train.max_steps_per_epoch=3"]
    overrides += [f"run.output_dir={tmp_path}", "run.name=r", "optimizer.lr=0.01"]
    config = load_config(ClassifyConfig, None, overrides)
    task = ClassificationTask(config)
    frozen = {n: p.detach().clone() for n, p in task.model.named_parameters() if not p.requires_grad}
    trainable = [n for n, p in task.model.named_parameters() if p.requires_grad]
    adapter = ".lora_" if mode == "lora" else "blocks.prompts"
    assert any(adapter in n for n in trainable)
    assert all(adapter in n or n.startswith("head.") or n.startswith("encoder.cls_") for n in trainable), trainable
    share = re.fullmatch(r"([\d,]+) of ([\d,]+) \((\d+\.\d\d) %\)", task.info["trainable_parameters"])
    assert share and 0 < float(share[3]) < 50, task.info["trainable_parameters"]
    run_dir, _ = train_task(config, lambda cfg, run: task, show_progress=False)
    moved = [n for n, p in task.model.named_parameters() if n in frozen and not torch.equal(p.cpu(), frozen[n])]
    assert not moved, f"frozen parameters changed: {moved[:4]}"
    assert "trainable_parameters" in (run_dir / "results.md").read_text()


def test_mode_aliases_name_the_papers_probes():
    assert load_config(ClassifyConfig, None, ["mode=linear"]).mode == "mlp-linear"
    assert load_config(ClassifyConfig, None, ["mode=mlp3"]).mode == "mlp-3"


def test_train_only_reports_the_trainable_share():
    encoder = tiny_encoder()
    text = train_only(encoder, [encoder.cls_token])
    assert text.startswith("32 of ") and text.endswith(" %)")


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_lora_fine_tune_learns_real_modelnet10_above_chance(tmp_path):
    if not SHARED_MODELNET10.is_dir():
        pytest.skip(f"{SHARED_MODELNET10} not present")
    overrides = [*TINY_ENCODER, "data.name=npz", f"data.root={SHARED_MODELNET10}", "data.npoints=256"]
    overrides += ["data.batch_size=32", "train.epochs=1", "train.max_steps_per_epoch=40", "scheduler.warmup_epochs=0"]
    overrides += ["optimizer.lr=0.002", "train.precision=fp32", "train.bn_recalibration_batches=10", "mode=lora"]
    config = load_config(ClassifyConfig, None, [*overrides, f"run.output_dir={tmp_path}", "run.name=lora"])
    _, result = train_task(config, ClassificationTask, show_progress=False)
    assert result.final_metrics["acc"] > 40.0, result.final_metrics  # chance ≈ 10-11 %
