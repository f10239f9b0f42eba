"""Saving/loading encoders, and reading the official ACT / Point-MAE checkpoints by key renaming."""

import io
import warnings
import zipfile

import numpy as np
import pytest
import torch

import act3d
from act3d.errors import CheckpointError, ConfigError
from act3d.models.encoder_io import OfficialGroupsWarning, convert_official_keys, save_encoder
from act3d.models.point_transformer import EncoderConfig, PointEncoder

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


def _as_numpy1_file(path, state: dict) -> None:
    """``torch.save`` ``state`` as the official runners (numpy 1.x) wrote it: scalars pickled as
    ``numpy.core.multiarray.scalar``, whichever numpy runs the test."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    source = zipfile.ZipFile(buffer)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            out.writestr(info.filename, data)


def _official_pretraining_state(encoder: PointEncoder) -> dict:
    """ACT_PointDistillation's layout: the encoder with its pretraining heads, beside decoder, proj_head, tokenizer."""
    state = official_state(encoder, "ACT_encoder.")
    state["module.ACT_encoder.lm_head.weight"] = torch.zeros(16, 32)
    state["module.ACT_encoder.lm_head.bias"] = torch.zeros(16)
    state["module.ACT_encoder.cls_head.0.weight"] = torch.zeros(8, 32)
    state["module.ACT_encoder.cls_head.2.weight"] = torch.zeros(8, 8)
    state["module.proj_head.weight"] = torch.zeros(32, 32)
    state["module.proj_head.bias"] = torch.zeros(32)
    state["module.decoder_pos_embed.0.weight"] = torch.zeros(128, 3)
    state["module.dvae_tokenizer.codebook"] = torch.zeros(16, 32)
    return state


@pytest.mark.parametrize("layout", ["pretraining", "fine-tuning"])
def test_official_checkpoints_with_numpy_metrics_load_strictly(tmp_path, layout):
    torch.manual_seed(0)
    encoder = PointEncoder(**SMALL.model_dump())
    if layout == "pretraining":
        weights = _official_pretraining_state(encoder)
        metrics = {"acc": np.float64(91.3)}  # the pretraining runner's SVM accuracy
    else:
        weights = {k.replace("ACT_encoder.", ""): v for k, v in official_state(encoder, "ACT_encoder.").items()}
        weights["module.cls_head_finetune.0.weight"] = torch.zeros(256, 64)
        metrics = {"acc": 93.1}
    state = {"base_model": weights, "optimizer": {}, "epoch": 299, "metrics": metrics, "best_metrics": metrics}
    path = tmp_path / f"official_{layout}.pth"
    _as_numpy1_file(path, state)
    pickled = b"".join(zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist() if n.endswith(".pkl"))
    assert (b"numpy.core.multiarray\nscalar" in pickled) == (layout == "pretraining")
    loaded = act3d.load_encoder(path, SMALL, strict=True)
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.load_report == {"missing": [], "unexpected": [], "mismatched": []}


def test_pretraining_heads_are_dropped_and_named():
    encoder = PointEncoder(**SMALL.model_dump())
    renamed, dropped = convert_official_keys(_official_pretraining_state(encoder))
    assert set(renamed) == set(encoder.state_dict())
    assert {"ACT_encoder.lm_head.weight", "ACT_encoder.cls_head.0.weight", "proj_head.weight"} <= set(dropped)


def _official_file(tmp_path) -> str:
    encoder = PointEncoder(**EncoderConfig().model_dump())
    path = tmp_path / "official.pth"
    torch.save({"base_model": official_state(encoder, "ACT_encoder.")}, path)
    return path


def test_groups_of_an_official_checkpoint_come_from_a_preset_the_caller_or_a_warning(tmp_path):
    path = _official_file(tmp_path)
    with pytest.warns(OfficialGroupsWarning, match="128 for ScanObjectNN and part segmentation"):
        assert act3d.load_encoder(path).grouper.num_groups == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert act3d.load_encoder(path, preset="scan").grouper.num_groups == 128
        assert act3d.load_encoder(path, preset="modelnet8k").grouper.num_groups == 512
        assert act3d.load_encoder(path, EncoderConfig(num_groups=32)).grouper.num_groups == 32
    with pytest.raises(ConfigError, match="unknown preset 'scannet'"):
        act3d.load_encoder(path, preset="scannet")
    with pytest.raises(ConfigError, match="not both"):
        act3d.load_encoder(path, EncoderConfig(), preset="scan")
    assert act3d.load_encoder("random", preset="partseg").grouper.num_groups == 128


def test_groups_of_our_checkpoints_come_from_the_file(tmp_path):
    config = SMALL.model_copy(update={"num_groups": 12, "skip_near_origin": True})
    path = save_encoder(PointEncoder(**config.model_dump()), config, tmp_path / "encoder.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = act3d.load_encoder(path)
    assert loaded.grouper.num_groups == 12 and loaded.grouper.skip_near_origin
    assert act3d.load_encoder(path, preset="scan").grouper.num_groups == 128


def test_parameter_count_without_allocating_matches_a_built_encoder():
    from act3d.models.encoder_io import encoder_parameter_count

    for config in (SMALL, EncoderConfig(dim=48, depth=3, num_heads=4, mlp_ratio=2.0)):
        built = sum(p.numel() for p in PointEncoder(**config.model_dump()).parameters())
        assert encoder_parameter_count(config) == built
