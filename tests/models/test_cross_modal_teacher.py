"""The cross-modal teacher: built from a stage-I checkpoint, frozen, and the one source of stage-II targets."""

from __future__ import annotations

import pytest
import torch

from act3d.errors import CheckpointError, ConfigError
from act3d.models.autoencoder import AutoencoderConfig, TeacherConfig, build_autoencoder
from act3d.models.cross_modal_teacher import CrossModalTeacher

TRUNK = TeacherConfig(name="random:dinov2_vits14_imgfocus", num_blocks=1, prompts=2)
SIZES = AutoencoderConfig(num_groups=8, group_size=8, encoder_dim=32, codebook_size=16, token_dim=24)


def stage1_checkpoint(path, trunk=TRUNK, sizes=SIZES):
    torch.manual_seed(0)
    autoencoder = build_autoencoder(trunk, sizes)
    config = {"task": "pretrain-teacher", "teacher": trunk.model_dump(), "model": sizes.model_dump()}
    torch.save({"model": autoencoder.state_dict(), "config": config}, path)
    return autoencoder


def inputs():
    torch.manual_seed(5)
    points = torch.randn(3, 128, 3)
    return build_autoencoder(TRUNK, SIZES).grouper(points)


def test_loaded_teacher_gives_the_targets_of_the_trained_autoencoder(tmp_path):
    autoencoder = stage1_checkpoint(tmp_path / "ckpt.pth").train()
    teacher = CrossModalTeacher.from_checkpoint(tmp_path / "ckpt.pth", SIZES.num_groups, SIZES.group_size)
    patches, centers = inputs()
    for code in ("sample", "argmax", "soft"):
        torch.manual_seed(1)
        expected = autoencoder.targets(patches, centers, code)
        torch.manual_seed(1)
        got = teacher.targets(patches, centers, code)
        assert got.shape == (3, SIZES.num_groups, SIZES.token_dim) and teacher.target_dim == SIZES.token_dim
        torch.testing.assert_close(got, expected)
    assert "ckpt.pth" in teacher.source and "dinov2_vits14_imgfocus" in teacher.source


def test_teacher_is_frozen_and_its_state_never_changes(tmp_path):
    stage1_checkpoint(tmp_path / "ckpt.pth")
    teacher = CrossModalTeacher.from_checkpoint(tmp_path / "ckpt.pth", SIZES.num_groups, SIZES.group_size)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    patches, centers = inputs()
    teacher.targets(patches, centers)
    assert teacher.training  # batch-statistics BatchNorm and prompt dropout, as the official code
    assert not any(p.requires_grad for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"teacher state changed: {key}"


def test_decode_gives_patches_relative_to_their_centres(tmp_path):
    stage1_checkpoint(tmp_path / "ckpt.pth")
    teacher = CrossModalTeacher.from_checkpoint(tmp_path / "ckpt.pth", SIZES.num_groups, SIZES.group_size)
    patches, centers = inputs()
    fine = teacher.decode(teacher.targets(patches, centers)[:, :5])
    assert fine.shape == (3, 5, SIZES.group_size, 3)


def test_a_checkpoint_with_a_broken_stage1_config_is_refused(tmp_path):
    stage1_checkpoint(tmp_path / "ckpt.pth")
    state = torch.load(tmp_path / "ckpt.pth", weights_only=True)
    state["config"]["model"]["codebook_size"] = -3
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"bad\.pth: its stage-I config is not valid"):
        CrossModalTeacher.from_checkpoint(tmp_path / "bad.pth", SIZES.num_groups, SIZES.group_size)
    state["config"]["model"]["codebook_size"] = 32  # valid, but not the stored weights' size
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"other\.pth"):
        CrossModalTeacher.from_checkpoint(tmp_path / "other.pth", SIZES.num_groups, SIZES.group_size)


OFFICIAL_NAMES = {  # our prefix -> the prefix ACTPromptedDiscreteVAEwithVIT (official models/dvae.py) uses
    "patch_embed.": "encoder.",
    "to_teacher.": "proj_pre.",
    "from_teacher.": "proj_post.",
    "teacher.pos_embed.": "visual_pos_embed.",
    "teacher.prompt_tokens": "visual_prompt_token",
    "teacher.prompt_pos": "visual_prompt_pos",
    "teacher.deep_prompt_tokens": "deep_prompt_tokens",
    "teacher.deep_prompt_pos": "deep_prompt_pos",
    "teacher.teacher.blocks.": "visual_embed.0.",
    "teacher.teacher.norm.": "visual_embed.1.",
}
OFFICIAL_TRUNK = TeacherConfig(name="random:vit_base_patch16_384", num_blocks=2, prompts=3)


def official_checkpoint(path, trunk=OFFICIAL_TRUNK):
    """Our autoencoder's weights written as the official stage-I runner saves its model: official key
    names under 'module.', Conv1d weights (out, in, 1) in the PointNet and the folding decoder."""
    torch.manual_seed(0)
    autoencoder = build_autoencoder(trunk, SIZES)
    state = {}
    for key, value in autoencoder.state_dict().items():
        if trunk.prompts == 0 and "prompt" in key:
            continue  # the official model has no prompt tensors without prompts
        conv = key.startswith(("patch_embed.", "decoder.final_conv.")) and key.endswith(".weight") and value.ndim == 2
        ours = next((prefix for prefix in OFFICIAL_NAMES if key.startswith(prefix)), None)
        name = key if ours is None else OFFICIAL_NAMES[ours] + key.removeprefix(ours)
        state[f"module.{name}"] = value[..., None] if conv else value
    torch.save({"base_model": state, "optimizer": {}, "epoch": 299, "metrics": {}}, path)
    return autoencoder


@pytest.mark.parametrize("prompts", [3, 0])
def test_the_official_act_stage_one_release_converts_to_the_same_targets(tmp_path, prompts):
    trunk = OFFICIAL_TRUNK.model_copy(update={"prompts": prompts, "prompt_mode": "deep" if prompts else "none"})
    autoencoder = official_checkpoint(tmp_path / "ckpt_act_dvae.pth", trunk).train()
    teacher = CrossModalTeacher.from_checkpoint(tmp_path / "ckpt_act_dvae.pth", SIZES.num_groups, SIZES.group_size)
    patches, centers = inputs()
    torch.manual_seed(1)
    expected = autoencoder.targets(patches, centers, "sample")
    torch.manual_seed(1)
    torch.testing.assert_close(teacher.targets(patches, centers, "sample"), expected)
    assert "official ACT stage I" in teacher.source and "vit_base_patch16_384" in teacher.source
    prompted = teacher.autoencoder.teacher
    assert prompted.num_prompts == prompts and len(prompted.teacher.blocks) == 2


def test_an_official_checkpoint_with_a_clip_trunk_or_other_patches_is_refused_by_name(tmp_path):
    official_checkpoint(tmp_path / "a.pth")
    with pytest.raises(ConfigError, match=r"trained on 8×8 patches, the student uses 8×32"):
        CrossModalTeacher.from_checkpoint(tmp_path / "a.pth", 8, 32)
    ckpt = torch.load(tmp_path / "a.pth", weights_only=True)
    ckpt["base_model"]["module.visual_embed.2.weight"] = torch.ones(768)
    torch.save(ckpt, tmp_path / "clip.pth")
    with pytest.raises(CheckpointError, match=r"CLIP or BERT trunk"):
        CrossModalTeacher.from_checkpoint(tmp_path / "clip.pth", SIZES.num_groups, SIZES.group_size)
