"""The cross-modal teacher (the paper's "teacher"): the trained stage-I autoencoder, frozen, asked by
stage II for the target of every patch.

Stage I trains :class:`~act3d.models.autoencoder.ACTAutoencoder` around a frozen pretrained trunk
(``models.teachers``) with prompts (``models.prompted``). Stage II loads that checkpoint here: the
teacher is built, loaded, frozen, and queried through :meth:`CrossModalTeacher.targets`; no task
re-implements its forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from act3d.errors import CheckpointError, ConfigError
from act3d.models.autoencoder import ACTAutoencoder, AutoencoderConfig, TargetCode, TeacherConfig, build_autoencoder
from act3d.util.files import load_checkpoint


class CrossModalTeacher(nn.Module):
    """A frozen stage-I autoencoder that makes stage II's per-patch targets.

    It stays in train() mode (batch-statistics BatchNorm, prompt dropout on) as in the official code,
    but its BatchNorms stop tracking running statistics, so that its state, like its weights, never
    changes. It follows its inputs to their device (the trainer moves only the student).

    Args:
        autoencoder: the trained stage-I model.
        source: where it came from (a checkpoint path and its trunk), for the run's records.
    """

    def __init__(self, autoencoder: ACTAutoencoder, source: str = "") -> None:
        super().__init__()
        self.autoencoder = autoencoder.requires_grad_(False)
        for module in autoencoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.track_running_stats = False
        self.source = source
        self.train()

    @classmethod
    def from_checkpoint(cls, path: str | Path, num_groups: int, group_size: int) -> CrossModalTeacher:
        """The teacher of an ``act3d pretrain-teacher`` checkpoint, or of the official ACT stage-I release
        (``ckpt_act_dvae.pth``, converted by :func:`_convert_official_act`), for a student of G × K patches.

        Raises:
            CheckpointError: see :func:`load_stage1`.
            ConfigError: the teacher was trained on other patches than the student's.
        """
        autoencoder, sizes, source, _ = load_stage1(path, num_groups)
        if (sizes.num_groups, sizes.group_size) != (num_groups, group_size):
            raise ConfigError(
                f"{path}: teacher was trained on {sizes.num_groups}×{sizes.group_size} patches, "
                f"the student uses {num_groups}×{group_size}; they must share patches"
            )
        return cls(autoencoder, f"stage-I teacher from {source}")

    @property
    def target_dim(self) -> int:
        """C, the width of a target (the codebook's token width)."""
        return self.autoencoder.codebook.shape[1]

    def _follow(self, device: torch.device) -> None:
        if self.autoencoder.codebook.device != device:
            self.to(device)

    @torch.no_grad()
    def targets(self, patches: torch.Tensor, centers: torch.Tensor, code: TargetCode = "sample") -> torch.Tensor:
        """Targets (B, G, C) for patches (B, G, K, 3) and centres (B, G, 3): the DGCNN₂ features of the
        patches' codes (``sample``: a hard Gumbel sample at τ = 1, the paper; ``argmax``; ``soft``)."""
        self._follow(patches.device)
        return self.autoencoder.targets(patches, centers, code)

    @torch.no_grad()
    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Target-space features (B, T, C) → the decoder's patches (B, T, K, 3), relative to their centres:
        how the pipeline's pictures show what a student predicted."""
        self._follow(features.device)
        return self.autoencoder.decoder(features)[1]


class Stage1(NamedTuple):
    """A stage-I checkpoint, read: the trained autoencoder, its sizes, where it came from (for the run's
    records) and the config its run recorded (``{}`` for an official checkpoint)."""

    autoencoder: ACTAutoencoder
    sizes: AutoencoderConfig
    source: str
    config: dict[str, Any]


def load_stage1(path: str | Path, num_groups: int = 64) -> Stage1:
    """The stage I of an ``act3d pretrain-teacher`` checkpoint or of the official ACT release.
    ``num_groups``: the patch count of an official checkpoint, which does not store it (the official
    stage I uses 64); ours record theirs.

    Raises:
        CheckpointError: missing or unreadable file, not a stage-I checkpoint, weights that do not
            match the checkpoint's own config.
    """
    ckpt = load_checkpoint(path)
    config = ckpt.get("config", {})
    official = _official_state_dict(ckpt) if config.get("task") != "pretrain-teacher" else None
    if official is not None:
        trunk, sizes, weights = _convert_official_act(official, num_groups, path)
    elif config.get("task") != "pretrain-teacher" or "model" not in ckpt:
        raise CheckpointError(
            f"{path}: not an `act3d pretrain-teacher` checkpoint, nor an official ACT stage-I one "
            "(ACTPromptedDiscreteVAEwithVIT, keys 'codebook', 'dgcnn_1.*', 'visual_embed.*')"
        )
    else:
        try:
            trunk = TeacherConfig.model_validate(config.get("teacher", {}))
            sizes = AutoencoderConfig.model_validate(config.get("model", {}))
        except ValueError as err:  # pydantic's ValidationError
            raise CheckpointError(f"{path}: its stage-I config is not valid: {err}") from None
        weights = ckpt["model"]
    name = trunk.name.removeprefix("random:")
    trunk = trunk.model_copy(update={"name": f"random:{name}", "weights": None})  # the weights are in ckpt
    autoencoder = build_autoencoder(trunk, sizes)
    try:
        missing, unexpected = autoencoder.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # shapes that differ from the config's
        raise CheckpointError(f"{path}: does not match its own config: {err}") from None
    missing = [k for k in missing if autoencoder.state_dict()[k].numel()]  # empty prompt tensors of 0 prompts
    if missing or unexpected:
        raise CheckpointError(f"{path}: does not match its own config: missing {missing}, unexpected {unexpected}")
    origin = "official ACT stage I" if official is not None else "act3d pretrain-teacher"
    return Stage1(autoencoder, sizes, f"{path} ({origin}, {name})", config if official is None else {})


_OFFICIAL_RENAMES = (
    ("encoder.", "patch_embed."),
    ("proj_pre.", "to_teacher."),
    ("proj_post.", "from_teacher."),
    ("visual_pos_embed.", "teacher.pos_embed."),
    ("visual_prompt_token", "teacher.prompt_tokens"),
    ("visual_prompt_pos", "teacher.prompt_pos"),
    ("deep_prompt_tokens", "teacher.deep_prompt_tokens"),
    ("deep_prompt_pos", "teacher.deep_prompt_pos"),
    ("visual_embed.0.", "teacher.teacher.blocks."),
    ("visual_embed.1.", "teacher.teacher.norm."),
)
"""Official ``ACTPromptedDiscreteVAEwithVIT`` key prefixes → ours (docs/checkpoints.md); ``codebook``,
``dgcnn_1``, ``dgcnn_2`` and ``decoder`` keep their names."""

_VIT_BY_WIDTH = {384: "vit_small_patch16_384", 768: "vit_base_patch16_384", 1024: "vit_large_patch16_384"}
"""The timm trunk of an official checkpoint, by its width (the paper: ViT-B/16 at 384)."""


def _official_state_dict(ckpt: dict) -> dict[str, torch.Tensor] | None:
    """The state dict of an official ACT stage-I checkpoint (``base_model`` or ``model``), or None."""
    for key in ("base_model", "model", "state_dict"):
        state = ckpt.get(key)
        if isinstance(state, dict):
            state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(k, str)}
            if "codebook" in state and any(k.startswith("dgcnn_1.") for k in state):
                return state
    return None


def _convert_official_act(
    state: dict[str, torch.Tensor], num_groups: int, path: str | Path
) -> tuple[TeacherConfig, AutoencoderConfig, dict[str, torch.Tensor]]:
    """An official ACT stage-I state dict → (trunk config, sizes, our state dict).

    The sizes are read from the weights (codebook, PointNet width, patch size from the coarse decoder,
    trunk width and depth, prompts); the number of patches is not stored, so it is the student's
    (the official stage I uses 64). Conv1d weights ``(out, in, 1)`` of the PointNet and decoder become
    our Linear ``(out, in)``. CLIP or BERT trunks (``visual_embed`` of another shape) are refused.
    """
    if any(k.startswith("visual_embed.0.layer.") for k in state) or "visual_embed.2.weight" in state:
        raise CheckpointError(f"{path}: an official ACT stage I with a CLIP or BERT trunk: only ViT trunks convert")
    if not any(k.startswith("visual_embed.0.") for k in state):
        raise CheckpointError(f"{path}: an official stage I without a pretrained trunk (visual_embed) does not convert")
    width = state["proj_pre.weight"].shape[0]
    if width not in _VIT_BY_WIDTH:
        raise CheckpointError(f"{path}: trunk width {width} is none of the ViTs {sorted(_VIT_BY_WIDTH)}")
    depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("visual_embed.0."))
    prompts = state["visual_prompt_token"].shape[1] if "visual_prompt_token" in state else 0
    mode = "deep" if "deep_prompt_tokens" in state else ("shallow" if prompts else "none")
    trunk = TeacherConfig(name=f"random:{_VIT_BY_WIDTH[width]}", num_blocks=depth, prompts=prompts, prompt_mode=mode)
    sizes = AutoencoderConfig(
        num_groups=num_groups,
        group_size=state["decoder.mlp.4.weight"].shape[0] // 3 * 4,  # 3 · K/4 coarse coordinates
        encoder_dim=state["encoder.second_conv.3.weight"].shape[0],
        codebook_size=state["codebook"].shape[0],
        token_dim=state["codebook"].shape[1],
    )
    renamed = {}
    for key, value in state.items():
        for old, new in _OFFICIAL_RENAMES:
            if key.startswith(old):
                key = new + key.removeprefix(old)
                break
        conv = key.startswith(("patch_embed.", "decoder.final_conv.")) and value.ndim == 3 and value.shape[-1] == 1
        renamed[key] = value[..., 0] if conv else value
    return trunk, sizes, renamed
