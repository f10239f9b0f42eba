"""Stage II: the masked point model (student encoder + light decoder) shared by ACT and Point-MAE.

The encoder only ever receives the visible tokens; the decoder sees [visible ; mask tokens] and its
outputs at the masked positions are mapped by ``head`` to what the objective predicts: the teacher's
per-token features (ACT) or the masked patches' points (Point-MAE).
"""

from __future__ import annotations

from typing import Literal

import torch
from timm.layers import trunc_normal_
from torch import nn

from act3d.models.point_transformer import PointEncoder
from act3d.models.tokenizer import position_mlp
from act3d.models.transformer import TransformerStack

MaskType = Literal["random", "block"]


def random_mask(batch: int, groups: int, ratio: float, device: torch.device) -> torch.Tensor:
    """(B, G) bool, True = masked: exactly ``int(ratio·G)`` patches per cloud, uniformly at random."""
    num_mask = int(ratio * groups)
    order = torch.rand(batch, groups, device=device).argsort(dim=1)
    mask = torch.zeros(batch, groups, dtype=torch.bool, device=device)
    mask.scatter_(1, order[:, :num_mask], True)
    return mask


def block_mask(centers: torch.Tensor, ratio: float) -> torch.Tensor:
    """(B, G) bool: the ``int(ratio·G)`` centres nearest a random centre of each cloud (Point-MAE 'block')."""
    b, g, _ = centers.shape
    num_mask = int(ratio * g)
    seed = centers[torch.arange(b, device=centers.device), torch.randint(g, (b,), device=centers.device)]
    order = (centers - seed[:, None]).square().sum(-1).argsort(dim=1)
    mask = torch.zeros(b, g, dtype=torch.bool, device=centers.device)
    mask.scatter_(1, order[:, :num_mask], True)
    return mask


class MaskedPointModel(nn.Module):
    """Student encoder on visible patches + ``decoder_depth``-block decoder + linear head.

    Args:
        encoder: the student :class:`PointEncoder` (its CLS output is not decoded).
        out_dim: head width (384 for ACT's teacher features, 3·K for Point-MAE points).
        mask_ratio: fraction of patches hidden (0.8 ACT, 0.6 Point-MAE).
        mask_type: ``random`` (paper) or ``block``.
        decoder_depth, decoder_heads: the light decoder (2 blocks, 6 heads).
    """

    def __init__(
        self,
        encoder: PointEncoder,
        out_dim: int,
        mask_ratio: float = 0.8,
        mask_type: MaskType = "random",
        decoder_depth: int = 2,
        decoder_heads: int = 6,
    ) -> None:
        super().__init__()
        dim = encoder.dim
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.mask_type = mask_type
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos_embed = position_mlp(dim)
        self.decoder = TransformerStack(dim, decoder_depth, decoder_heads)
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)
        trunc_normal_(self.mask_token, std=0.02)

    def make_mask(self, centers: torch.Tensor) -> torch.Tensor:
        b, g, _ = centers.shape
        if self.mask_type == "block":
            return block_mask(centers, self.mask_ratio)
        return random_mask(b, g, self.mask_ratio, centers.device)

    def forward(
        self, patches: torch.Tensor, centers: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """patches (B, G, K, 3), centres (B, G, 3), mask (B, G) with the same count per row →
        (predictions for masked patches (B, M, out_dim), encoder output of visible tokens (B, 1+V, dim))."""
        b, g = mask.shape
        num_mask = int(mask[0].sum())
        visible = ~mask
        vis_patches = patches[visible].reshape(b, g - num_mask, *patches.shape[2:])
        vis_centers = centers[visible].reshape(b, g - num_mask, 3)
        mask_centers = centers[mask].reshape(b, num_mask, 3)
        encoded = self.encoder.encode_tokens(self.encoder.patch_embed(vis_patches), vis_centers)
        x = torch.cat([encoded[:, 1:], self.mask_token.expand(b, num_mask, -1)], dim=1)
        pos = self.decoder_pos_embed(torch.cat([vis_centers, mask_centers], dim=1))
        x = self.decoder(x, pos)
        return self.head(self.decoder_norm(x[:, -num_mask:])), encoded
