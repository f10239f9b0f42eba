"""The point transformer (Point-MAE/ACT student) and its downstream classifier.

The encoder is the same module in stage II (where it sees only visible tokens) and in fine-tuning
(where it sees all of them); its pooled feature is ``[CLS ; max-pool of tokens]`` (B, 2·dim).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field
from timm.layers import trunc_normal_
from torch import nn

from act3d.models.tokenizer import MiniPointNet, PatchGrouper, position_mlp
from act3d.models.transformer import TransformerStack
from act3d.ops.normalize import normalize_unit_sphere
from act3d.util.config import Strict

HeadKind = Literal["mlp3", "linear"]

PAPER_STUDENT = dict(dim=384, depth=12, num_heads=6, mlp_ratio=4.0, drop_path=0.1, num_groups=64, group_size=32)
"""The paper's student (ViT-S-like, 64 patches of 32 points for 1,024-point clouds): the one place these
sizes are written; ``PointEncoder``'s and ``EncoderConfig``'s defaults read them."""


class EncoderConfig(Strict):
    """The point transformer (student) sizes; paper: 384 wide, 12 deep, 6 heads, 64×32 groups.

    ``skip_near_origin``: FPS skips points with ``|p|² <= 1e-3`` as the official CUDA kernel does
    (to match an official checkpoint's grouping exactly; off by default).
    """

    dim: int = Field(PAPER_STUDENT["dim"], gt=0)
    depth: int = Field(PAPER_STUDENT["depth"], ge=0)
    num_heads: int = Field(PAPER_STUDENT["num_heads"], gt=0)
    mlp_ratio: float = Field(PAPER_STUDENT["mlp_ratio"], gt=0)
    drop_path: float = Field(PAPER_STUDENT["drop_path"], ge=0, lt=1)
    num_groups: int = Field(PAPER_STUDENT["num_groups"], gt=0)
    group_size: int = Field(PAPER_STUDENT["group_size"], gt=0)
    skip_near_origin: bool = False


class PointEncoder(nn.Module):
    """Tokenizer + CLS token + transformer stack + final LayerNorm.

    Args:
        dim: token width (384 in the paper).
        depth: number of blocks (12).
        num_heads: attention heads (6).
        mlp_ratio: MLP width / dim (4).
        drop_path: maximum stochastic-depth rate (0.1).
        num_groups: G, FPS centres per cloud (64 for 1024 points, 128 for 2048).
        group_size: K, points per patch (32).
        skip_near_origin: group as the official CUDA FPS kernel, which never picks points with
            ``|p|² <= 1e-3`` as centres (off by default; see docs/checkpoints.md).
    """

    def __init__(
        self,
        dim: int = PAPER_STUDENT["dim"],
        depth: int = PAPER_STUDENT["depth"],
        num_heads: int = PAPER_STUDENT["num_heads"],
        mlp_ratio: float = PAPER_STUDENT["mlp_ratio"],
        drop_path: float = PAPER_STUDENT["drop_path"],
        num_groups: int = PAPER_STUDENT["num_groups"],
        group_size: int = PAPER_STUDENT["group_size"],
        skip_near_origin: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.grouper = PatchGrouper(num_groups, group_size, skip_near_origin)
        self.patch_embed = MiniPointNet(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = position_mlp(dim)
        self.blocks = TransformerStack(dim, depth, num_heads, mlp_ratio, drop_path)
        self.norm = nn.LayerNorm(dim)
        self.source = "random init"
        """Where the weights came from (a file, with what was dropped), for run records."""
        self.load_report: dict[str, list[str]] = {"missing": [], "unexpected": [], "mismatched": []}
        """Keys of the file the last load did not use or did not find (non-strict loads only)."""
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.cls_pos, std=0.02)
        self.apply(init_weights)

    @property
    def feature_dim(self) -> int:
        """Width of the pooled feature ``[CLS ; max-pool]``."""
        return 2 * self.dim

    def encode_tokens(self, tokens: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, dim), centres (B, T, 3) → normed output (B, 1+T, dim), CLS first.

        Only the tokens given are attended to: stage II passes the visible ones alone.
        """
        b = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)
        pos = torch.cat([self.cls_pos.expand(b, -1, -1), self.pos_embed(centers)], dim=1)
        return self.norm(self.blocks(x, pos))

    def layer_features(self, points: torch.Tensor, layers: Sequence[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """points (B, N, 3) → (normed outputs (B, G, dim) of the 1-based blocks ``layers``, centres (B, G, 3)).

        The tokens are encoded without the CLS token (the part-segmentation protocol).
        """
        patches, centers = self.grouper(points)
        taken = self.blocks.forward_intermediates(self.patch_embed(patches), self.pos_embed(centers), layers)
        return [self.norm(x) for x in taken], centers

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points (B, N, 3) → pooled features (B, 2·dim) = [CLS ; max over tokens]."""
        patches, centers = self.grouper(points)
        return pool_tokens(self.encode_tokens(self.patch_embed(patches), centers))

    @torch.no_grad()
    def embed(self, points: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Inference features: points (B, N, 3) or (N, 3) → (B, 2·dim) or (2·dim,), in eval mode.

        With ``normalize`` each cloud is first centred and scaled into the unit sphere, as in training.
        """
        single = points.dim() == 2
        points = points[None] if single else points
        if normalize:
            points = normalize_unit_sphere(points)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        features = self(points.to(device=device, dtype=torch.float32))
        self.train(was_training)
        return features[0] if single else features


def pool_tokens(x: torch.Tensor) -> torch.Tensor:
    """Encoder output (B, 1+T, D) → (B, 2D): the CLS token concatenated with the max over tokens."""
    return torch.cat([x[:, 0], x[:, 1:].amax(dim=1)], dim=-1)


def classification_head(in_dim: int, num_classes: int, kind: HeadKind = "mlp3", dropout: float = 0.5) -> nn.Module:
    """ACT's heads: ``mlp3`` = in→256 BN ReLU Drop(.5) →256 BN ReLU Drop(.5) →C; ``linear`` = in→C."""
    if kind == "linear":
        return nn.Linear(in_dim, num_classes)
    return nn.Sequential(
        nn.Linear(in_dim, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(256, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(256, num_classes),
    )


class PointClassifier(nn.Module):
    """Encoder + classification head: points (B, N, 3) → logits (B, C)."""

    def __init__(self, encoder: PointEncoder, num_classes: int, head: HeadKind = "mlp3", dropout: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = classification_head(encoder.feature_dim, num_classes, head, dropout)
        self.head.apply(init_weights)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(points))

    def probe_parameters(self) -> list[nn.Parameter]:
        """What trains in the probe modes (ACT's params named "cls"): the head, CLS token and CLS position."""
        return [*self.head.parameters(), self.encoder.cls_token, self.encoder.cls_pos]


def init_weights(module: nn.Module) -> None:
    """timm ViT initialisation: truncated normal (std 0.02) Linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
