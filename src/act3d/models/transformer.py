"""Transformer stacks for point tokens, built from timm's ViT ``Block`` (pre-norm, fused SDPA attention).

Parameter names (``blocks.N.norm1``, ``attn.qkv``, ``mlp.fc1`` …) match Point-MAE/ACT checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    """

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]  # 0 .. drop_path
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=False, drop_path=rate) for rate in rates
        )

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
