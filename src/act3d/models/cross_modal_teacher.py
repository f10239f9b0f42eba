"""The cross-modal teacher (the paper's "teacher"): the trained stage-I autoencoder, frozen, asked by
stage II for the target of every patch.

Stage I trains :class:`~act3d.models.autoencoder.ACTAutoencoder` around a frozen pretrained trunk
(``models.teachers``) with prompts (``models.prompted``). Stage II loads that checkpoint here: the
teacher is built, loaded, frozen, and queried through :meth:`CrossModalTeacher.targets`; no task
re-implements its forward.
"""

from __future__ import annotations

from pathlib import Path

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
        """The teacher of an ``act3d pretrain-teacher`` checkpoint, for a student of G × K patches.

        Raises:
            CheckpointError: missing or unreadable file, not a stage-I checkpoint, weights that do not
                match the checkpoint's own config.
            ConfigError: the teacher was trained on other patches than the student's.
        """
        ckpt = load_checkpoint(path)
        config = ckpt.get("config", {})
        if config.get("task") != "pretrain-teacher" or "model" not in ckpt:
            raise CheckpointError(f"{path}: not an `act3d pretrain-teacher` checkpoint")
        try:
            trunk = TeacherConfig.model_validate(config.get("teacher", {}))
            sizes = AutoencoderConfig.model_validate(config.get("model", {}))
        except ValueError as err:  # pydantic's ValidationError
            raise CheckpointError(f"{path}: its stage-I config is not valid: {err}") from None
        if (sizes.num_groups, sizes.group_size) != (num_groups, group_size):
            raise ConfigError(
                f"{path}: teacher was trained on {sizes.num_groups}×{sizes.group_size} patches, "
                f"the student uses {num_groups}×{group_size}; they must share patches"
            )
        name = trunk.name.removeprefix("random:")
        trunk = trunk.model_copy(update={"name": f"random:{name}", "weights": None})  # the weights are in ckpt
        autoencoder = build_autoencoder(trunk, sizes)
        try:
            missing, unexpected = autoencoder.load_state_dict(ckpt["model"], strict=False)
        except RuntimeError as err:  # shapes that differ from the config's
            raise CheckpointError(f"{path}: does not match its own config: {err}") from None
        if missing or unexpected:
            raise CheckpointError(f"{path}: does not match its own config: missing {missing}, unexpected {unexpected}")
        return cls(autoencoder, f"stage-I teacher from {path} ({name})")

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
