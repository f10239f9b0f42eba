"""FoldingNet-style patch decoder of the stage-I autoencoder: a token → coarse + fine local points."""

from __future__ import annotations

import torch
from torch import nn


class FoldingDecoder(nn.Module):
    """Token (…, C) → coarse (…, K/4, 3) by an MLP, then fine (…, K, 3) by folding a 2×2 grid (±0.05).

    Args:
        dim: token width C.
        num_fine: points per reconstructed patch (K = group size, a multiple of 4).
    """

    def __init__(self, dim: int, num_fine: int) -> None:
        super().__init__()
        if num_fine % 4:
            raise ValueError(f"num_fine must be a multiple of 4 (2×2 folding grid), got {num_fine}")
        self.num_fine = num_fine
        self.num_coarse = num_fine // 4
        self.mlp = nn.Sequential(
            nn.Linear(dim, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 3 * self.num_coarse),
        )
        # Point-wise layers (the official Conv1d(k=1) as Linear on channels-last points: faster on CPU).
        self.final_conv = nn.Sequential(
            nn.Linear(dim + 3 + 2, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 3),
        )
        side = torch.linspace(-0.05, 0.05, 2)
        grid = torch.stack(torch.meshgrid(side, side, indexing="xy")).reshape(2, 4)
        self.register_buffer("folding_seed", grid.T.repeat(self.num_coarse, 1), persistent=False)  # (K, 2)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, G, C) → (coarse (B, G, K/4, 3), fine (B, G, K, 3)), in patch-local coordinates."""
        b, g, c = tokens.shape
        x = tokens.reshape(b * g, c)
        coarse = self.mlp(x).reshape(b * g, self.num_coarse, 3)
        centres = coarse.unsqueeze(2).expand(-1, -1, 4, -1).reshape(b * g, self.num_fine, 3)
        seed = self.folding_seed.expand(b * g, -1, -1)
        feat = torch.cat([x.unsqueeze(1).expand(-1, self.num_fine, -1), seed, centres], dim=2)
        fine = self.final_conv(feat.reshape(-1, c + 5)).view(b * g, self.num_fine, 3) + centres
        return coarse.reshape(b, g, self.num_coarse, 3), fine.reshape(b, g, self.num_fine, 3)
