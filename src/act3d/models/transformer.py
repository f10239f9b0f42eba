"""Transformer stacks for point tokens, built from timm's ViT ``Block`` (pre-norm, fused SDPA attention).

Parameter names (``blocks.N.norm1``, ``attn.qkv``, ``mlp.fc1`` …) match Point-MAE/ACT checkpoints, and
so do the numerics: every LayerNorm is ``nn.LayerNorm`` with eps 1e-5, as in the official blocks
(timm's ``Block`` defaults to eps 1e-6, which moves an official checkpoint's features by ~1e-3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from timm.models.vision_transformer import Block
from torch import nn


class TransformerStack(nn.Module):
    """``depth`` pre-norm blocks; the position embedding is re-added before every block (Point-MAE).

    Args:
        dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of the MLP / dim.
        drop_path: stochastic depth, linearly increasing from 0 to this value over the blocks.
        init: ``"default"`` keeps timm's initialisation (the caller may re-initialise, as the encoder
            does); ``"xavier"`` is the official decoder's: Xavier-uniform Linear weights, zero biases.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        init: Literal["default", "xavier"] = "default",
    ) -> None:
        super().__init__()
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]  # 0 .. drop_path
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=False, drop_path=rate, norm_layer=nn.LayerNorm)
            for rate in rates
        )
        if init == "xavier":
            self.apply(_xavier_linear)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x, pos (B, T, dim) → output (B, T, dim)."""
        for block in self.blocks:
            x = block(x + pos)
        return x

    def forward_intermediates(self, x: torch.Tensor, pos: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """x, pos (B, T, dim) → outputs (B, T, dim) of the 1-based blocks ``indices``, in ascending order.

        Blocks after the last one asked for are not run.
        """
        taken = []
        for i, block in enumerate(self.blocks[: max(indices)], start=1):
            x = block(x + pos)
            if i in indices:
                taken.append(x)
        return taken


def _xavier_linear(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for Linear layers (the official decoder's init)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
