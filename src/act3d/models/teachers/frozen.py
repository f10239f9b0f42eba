"""The frozen trunk: a pretrained transformer's blocks and final norm, and the permuted control."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch import nn

from act3d.errors import ConfigError

RANDOM = "random"
"""``weights=RANDOM`` (or the ``random:`` prefix): the architecture with random weights (ablation)."""


class FrozenTeacher(nn.Module):
    """The frozen blocks and final norm of a pretrained transformer, applied to any token sequence.

    Parameters never require gradients and the module never leaves eval mode (``train()`` is a no-op),
    so dropout and drop-path stay off even when a parent is put in training mode. Gradients still flow
    through the blocks to their inputs.

    Attributes:
        blocks: the transformer blocks, each ``(B, N, width) -> (B, N, width)``.
        norm: the final norm (``nn.Identity`` for post-norm models such as BERT).
        width: the token width ``D``.
        source: what the weights are and where they came from, for run logs.
        pretrained: ``False`` for randomly initialised (ablation) teachers.
    """

    def __init__(
        self, blocks: Iterable[nn.Module], norm: nn.Module, *, width: int, source: str, pretrained: bool
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm
        self.width = width
        self.source = source
        self.pretrained = pretrained
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stays in eval mode whatever ``mode`` is: the teacher is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies every block, then the final norm: ``(B, N, width) -> (B, N, width)``."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def truncate(self, num_blocks: int) -> FrozenTeacher:
        """A teacher with the first ``num_blocks`` blocks (shared, not copied) and the same final norm."""
        depth = len(self.blocks)
        if not 1 <= num_blocks <= depth:
            raise ConfigError(f"num_blocks must be in 1..{depth} for {self.source}, got {num_blocks}")
        if num_blocks == depth:
            return self
        return FrozenTeacher(
            self.blocks[:num_blocks],
            self.norm,
            width=self.width,
            source=f"{self.source}; first {num_blocks} of {depth} blocks, the others dropped",
            pretrained=self.pretrained,
        )

    def extra_repr(self) -> str:
        return f"width={self.width}, depth={len(self.blocks)}, source={self.source!r}"


def permute_weights(teacher: FrozenTeacher, seed: int = 0) -> FrozenTeacher:
    """The teacher with the entries of every weight tensor shuffled by a fixed random permutation.

    Each tensor keeps its shape and its multiset of values (so its mean, scale and extremes), while
    what the pretraining put where is destroyed: a control with the teacher's statistics and no knowledge.
    The permuted values go to new storage, so weights shared with a cache or a file are never written.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in itertools.chain(teacher.parameters(), teacher.buffers()):
            if tensor.is_floating_point() and tensor.numel() > 1:
                order = torch.randperm(tensor.numel(), generator=generator).to(tensor.device)
                tensor.data = tensor.data.reshape(-1)[order].reshape(tensor.shape)
    teacher.source += "; weights PERMUTED within each tensor (control teacher: same statistics, no knowledge)"
    teacher.pretrained = False
    return teacher
