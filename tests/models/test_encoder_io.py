"""Saving/loading encoders, and reading the official ACT / Point-MAE checkpoints by key renaming."""

import pytest
import torch

import act3d
from act3d.engine.config import EncoderConfig
from act3d.errors import CheckpointError
from act3d.models.encoder_io import convert_official_keys, save_encoder
from act3d.models.point_transformer import PointEncoder

SMALL = EncoderConfig(dim=32, depth=2, num_heads=2, num_groups=8, group_size=8)


def official_state(encoder: PointEncoder, prefix: str) -> dict:
    """Our weights under the official names: PointNet as ``encoder.`` with Conv1d-shaped weights."""
    out = {}
    for key, value in encoder.state_dict().items():
        if key.startswith("patch_embed."):
            key = "encoder." + key.removeprefix("patch_embed.")
            if value.ndim == 2:
                value = value[..., None]
        out[f"module.{prefix}{key}"] = value
    out["module.ACT_decoder.blocks.0.norm1.weight"] = torch.ones(3)
    out["module.mask_token"] = torch.zeros(1, 1, 32)
    out["module.increase_dim.0.weight"] = torch.zeros(3, 3, 1)
    return out


def test_round_trip_and_embed(tmp_path):
    torch.manual_seed(0)
    encoder = PointEncoder(**SMALL.model_dump())
    path = save_encoder(encoder, SMALL, tmp_path / "encoder.pth", source="test")
    loaded = act3d.load_encoder(path)
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    points = torch.randn(3, 128, 3) * 5 + 2
    feats = loaded.embed(points)
    assert feats.shape == (3, 64)
    # embed normalises each cloud: scale and translation do not change the features
    torch.testing.assert_close(loaded.embed(points * 0.1 - 7), feats, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(loaded.embed(points[0]), feats[0], atol=1e-5, rtol=1e-5)


def test_official_act_checkpoint_loads_with_renamed_keys(tmp_path):
    torch.manual_seed(0)
    encoder = PointEncoder(**SMALL.model_dump())
    path = tmp_path / "ckpt_act.pth"
    torch.save({"base_model": official_state(encoder, "ACT_encoder."), "epoch": 300}, path)
    loaded = act3d.load_encoder(path, SMALL)
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    _, dropped = convert_official_keys(official_state(encoder, "ACT_encoder."))
    assert sorted(dropped) == ["ACT_decoder.blocks.0.norm1.weight", "increase_dim.0.weight", "mask_token"]


def test_point_mae_checkpoint_lists_missing_cls_keys(tmp_path):
    torch.manual_seed(0)
    encoder = PointEncoder(**SMALL.model_dump())
    state = {k: v for k, v in official_state(encoder, "MAE_encoder.").items() if "cls_" not in k}
    path = tmp_path / "pointmae.pth"
    torch.save({"base_model": state}, path)
    with pytest.raises(CheckpointError, match=r"missing 2: cls_pos, cls_token"):
        act3d.load_encoder(path, SMALL)
    loaded = act3d.load_encoder(path, SMALL, strict=False)
    assert torch.equal(loaded.norm.weight, encoder.norm.weight)
    assert "cls_token" in loaded.load_report["missing"]


def test_wrong_sizes_are_reported_not_ignored(tmp_path):
    encoder = PointEncoder(**SMALL.model_dump())
    path = save_encoder(encoder, SMALL, tmp_path / "e.pth")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        act3d.load_encoder(path, SMALL.model_copy(update={"dim": 48, "num_heads": 2}))
