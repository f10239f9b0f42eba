"""Part segmentation on top of the point transformer (ACT / Point-MAE ShapeNetPart head, docs/method.md).

Token features of blocks 4, 8 and 12 (each through the encoder's shared final LayerNorm) are
concatenated (3 × 384 = 1152 per token). The global feature is their max and mean over tokens
(2304) plus the shape category's one-hot through a 16→64 layer. Token features reach the points by
PointNet++ feature propagation: inverse-(squared-)distance interpolation from the 3 nearest centres,
concatenated with the point coordinates (1155) and an MLP (1536 → 1024). Per point, [propagated ;
global] (3392) → 512 → Dropout 0.5 → 256 → parts. As in the official model the transformer sees no
CLS token here.

The official code uses ``Conv1d(kernel_size=1)`` + ``BatchNorm1d`` over (B, C, N); these are the same
maps as ``Linear`` + ``BatchNorm1d`` over the B·N points, which run faster on CPUs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from pydantic import Field
from torch import nn

from act3d.errors import ConfigError
from act3d.models.point_transformer import PointEncoder, init_weights
from act3d.ops import gather_points, knn
from act3d.util.config import Strict


def interpolate_features(
    points: torch.Tensor, centers: torch.Tensor, features: torch.Tensor, k: int = 3, eps: float = 1e-8
) -> torch.Tensor:
    """PointNet++ interpolation: points (B, N, 3), centres (B, G, 3), features (B, G, C) → (B, N, C).

    Each point gets the average of its ``k`` nearest centres' features weighted by ``1 / (d² + eps)``
    (squared distances, as PointNet++'s ``square_distance``), normalised to sum to 1. With a single
    centre every point gets its features.
    """
    k = min(k, centers.shape[1])
    dists, idx = knn(points, centers, k, check_finite=False)  # the encoder's FPS checked the points
    weights = 1.0 / (dists + eps)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return (gather_points(features, idx) * weights.unsqueeze(-1).to(features.dtype)).sum(dim=2)


def _mlp(widths: Sequence[int]) -> nn.Sequential:
    """Linear + BatchNorm + ReLU per consecutive pair of ``widths`` (PointNet++ shared MLP)."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


PAPER_SEG_HEAD = dict(layers=(4, 8, 12), propagation=(1536, 1024), head=(512, 256), label_dim=64, dropout=0.5)
"""The official part-segmentation head (features of blocks 4/8/12, propagation 1536→1024, head 512→256,
a 64-d category label, dropout 0.5): written once, read by the head's and ``SegHeadConfig``'s defaults."""


class SegHeadConfig(Strict):
    """Sizes of the part-segmentation head (defaults: :data:`PAPER_SEG_HEAD`)."""

    layers: list[int] = Field(default_factory=lambda: list(PAPER_SEG_HEAD["layers"]))
    propagation: list[int] = Field(default_factory=lambda: list(PAPER_SEG_HEAD["propagation"]))
    head: list[int] = Field(default_factory=lambda: list(PAPER_SEG_HEAD["head"]))
    label_dim: int = Field(PAPER_SEG_HEAD["label_dim"], gt=0)
    dropout: float = Field(PAPER_SEG_HEAD["dropout"], ge=0, lt=1)


class PartSegmenter(nn.Module):
    """Encoder + ACT's part-segmentation head: points (B, N, 3), category (B,) → part logits (B, N, parts).

    Args:
        encoder: the point transformer (its CLS token is not used).
        num_categories: shape categories for the one-hot input (16 on ShapeNetPart).
        num_parts: global part ids (50 on ShapeNetPart).
        layers: 1-based blocks whose outputs are used (4, 8, 12).
        propagation: widths of the propagation MLP after the 3 + len(layers)·dim input (1536, 1024).
        head: widths of the point head before the last layer (512, 256); dropout after the first.
        label_dim: width of the category embedding (64).
        dropout: the head's dropout (0.5).
    """

    def __init__(
        self,
        encoder: PointEncoder,
        num_categories: int,
        num_parts: int,
        layers: Sequence[int] = PAPER_SEG_HEAD["layers"],
        propagation: Sequence[int] = PAPER_SEG_HEAD["propagation"],
        head: Sequence[int] = PAPER_SEG_HEAD["head"],
        label_dim: int = PAPER_SEG_HEAD["label_dim"],
        dropout: float = PAPER_SEG_HEAD["dropout"],
    ) -> None:
        super().__init__()
        depth = len(encoder.blocks.blocks)
        if not layers or any(not 1 <= i <= depth for i in layers) or len(set(layers)) != len(layers):
            raise ConfigError(f"part-segmentation layers {list(layers)} must be distinct blocks in 1..{depth}")
        if not propagation or not head:
            raise ConfigError("part segmentation needs at least one propagation width and one head width")
        self.encoder = encoder
        self.layers = tuple(sorted(layers))
        self.num_categories, self.num_parts = num_categories, num_parts
        feat = len(self.layers) * encoder.dim
        self.label_embed = nn.Sequential(
            nn.Linear(num_categories, label_dim, bias=False), nn.BatchNorm1d(label_dim), nn.LeakyReLU(0.2)
        )
        self.propagation = _mlp([feat + 3, *propagation])
        widths = [propagation[-1] + 2 * feat + label_dim, *head]
        blocks = [_mlp(widths[:2]), nn.Dropout(dropout), _mlp(widths[1:])] if len(widths) > 2 else [_mlp(widths)]
        self.head = nn.Sequential(*blocks, nn.Linear(widths[-1], num_parts))
        for module in (self.label_embed, self.propagation, self.head):
            module.apply(init_weights)
        # Not used without a CLS token, nor the blocks after the last one taken: frozen, so that
        # DistributedDataParallel sees no parameter without a gradient.
        for name, param in encoder.named_parameters():
            block = name.split(".")[2] if name.startswith("blocks.blocks.") else None
            if name in ("cls_token", "cls_pos") or (block is not None and int(block) >= self.layers[-1]):
                param.requires_grad_(False)

    def forward(self, points: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        b, n, _ = points.shape
        taken, centers = self.encoder.layer_features(points, self.layers)
        feats = torch.cat(taken, dim=-1)
        one_hot = nn.functional.one_hot(category, self.num_categories).to(feats.dtype)
        global_feat = torch.cat([feats.amax(dim=1), feats.mean(dim=1), self.label_embed(one_hot)], dim=-1)
        propagated = torch.cat([points, interpolate_features(points, centers, feats)], dim=-1)
        propagated = self.propagation(propagated.reshape(b * n, -1))
        x = torch.cat([propagated, global_feat.repeat_interleave(n, dim=0)], dim=-1)
        return self.head(x).view(b, n, self.num_parts)
