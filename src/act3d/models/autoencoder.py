"""ACT stage I: the cross-modal discrete autoencoder around a frozen pretrained transformer.

points → patches → mini-PointNet → DGCNN₁ → codebook logits → Gumbel-softmax → codebook → Linear to
the teacher width → prompted frozen teacher → Linear back → DGCNN₂ → FoldingNet coarse + fine patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from act3d.models.dgcnn import CenterDGCNN
from act3d.models.folding import FoldingDecoder
from act3d.models.prompted import PromptedTeacher
from act3d.models.tokenizer import MiniPointNet, PatchGrouper

TargetCode = Literal["sample", "argmax", "soft"]


def select_codes(logits: torch.Tensor, code: TargetCode = "sample") -> torch.Tensor:
    """Code weights (B, G, V) float32 from logits (B, G, V): a hard Gumbel sample at τ = 1 (``sample``),
    the one-hot argmax (``argmax``) or the softmax (``soft``)."""
    logits = logits.float()
    if code == "sample":
        return F.gumbel_softmax(logits, tau=1.0, hard=True, dim=-1)
    if code == "argmax":
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return logits.softmax(-1)


@dataclass
class AutoencoderOutput:
    """Everything the stage-I loss and the stage-II target need (shapes for B clouds, G patches)."""

    patches: torch.Tensor  # (B, G, K, 3) ground-truth local patches
    centers: torch.Tensor  # (B, G, 3)
    logits: torch.Tensor  # (B, G, V) codebook logits
    features: torch.Tensor  # (B, G, C) DGCNN₂ output: the stage-II target
    coarse: torch.Tensor  # (B, G, K/4, 3)
    fine: torch.Tensor  # (B, G, K, 3)


class ACTAutoencoder(nn.Module):
    """The stage-I model. Only the teacher is frozen; everything else trains.

    Args:
        teacher: the prompted frozen transformer (width D).
        num_groups, group_size: G patches of K points.
        encoder_dim: mini-PointNet width (384 in the official ACT stage I; 256 is Point-BERT's dVAE).
        codebook_size: V discrete tokens (8192).
        token_dim: codebook vector width (384), also DGCNN₂'s width and the stage-II target width.
        logit_scale: multiplies DGCNN₁'s output to give the codebook logits (paper: 1). DGCNN₁ ends in
            GroupNorm + LeakyReLU, so its outputs have unit scale and the softmax over V codes starts
            nearly flat; only its affine weights can sharpen it, slowly (see docs/method.md).
    """

    def __init__(
        self,
        teacher: PromptedTeacher,
        num_groups: int = 64,
        group_size: int = 32,
        encoder_dim: int = 384,
        codebook_size: int = 8192,
        token_dim: int = 384,
        logit_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.logit_scale = logit_scale
        width = teacher.teacher.width
        self.grouper = PatchGrouper(num_groups, group_size)
        self.patch_embed = MiniPointNet(encoder_dim)
        self.dgcnn_1 = CenterDGCNN(encoder_dim, codebook_size)
        self.codebook = nn.Parameter(torch.randn(codebook_size, token_dim))
        self.to_teacher = nn.Linear(token_dim, width)
        self.teacher = teacher
        self.from_teacher = nn.Linear(width, token_dim)
        self.dgcnn_2 = CenterDGCNN(token_dim, token_dim)
        self.decoder = FoldingDecoder(token_dim, group_size)

    def forward(self, points: torch.Tensor, temperature: float = 1.0, hard: bool = False) -> AutoencoderOutput:
        """points (B, N, 3) → :class:`AutoencoderOutput` (soft Gumbel-softmax sample at ``temperature``)."""
        patches, centers = self.grouper(points)
        logits, features = self.encode(patches, centers, temperature, hard)
        coarse, fine = self.decoder(features)
        return AutoencoderOutput(patches, centers, logits, features, coarse, fine)

    def encode(
        self, patches: torch.Tensor, centers: torch.Tensor, temperature: float = 1.0, hard: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """patches (B, G, K, 3), centres (B, G, 3) → (logits (B, G, V), DGCNN₂ features (B, G, C)).

        ``hard=True`` draws a stochastic one-hot Gumbel sample (straight-through): stage II's target
        uses it at τ = 1, on the student's own patches and centres.
        """
        logits, idx = self.code_logits(patches, centers)
        onehot = F.gumbel_softmax(logits.float(), tau=temperature, hard=hard, dim=-1)
        return logits, self.decode_codes(onehot, centers, idx)

    def code_logits(self, patches: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """patches (B, G, K, 3), centres (B, G, 3) → (codebook logits (B, G, V), centre graph (B, G, k))."""
        idx = self.dgcnn_1.neighbours(centers)
        return self.logit_scale * self.dgcnn_1(self.patch_embed(patches), centers, idx), idx

    def decode_codes(self, codes: torch.Tensor, centers: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Code weights (B, G, V) (one-hot, or any distribution over the codebook), centres (B, G, 3)
        → DGCNN₂ features (B, G, C): what the FoldingNet decodes and stage II distils.

        ``idx``: the centre graph from :meth:`code_logits`, reused when both DGCNNs have the same k.
        """
        x = self.from_teacher(self.teacher(self.to_teacher(codes.to(self.codebook.dtype) @ self.codebook), centers))
        return self.dgcnn_2(x, centers, idx if self.dgcnn_2.k == self.dgcnn_1.k else None)

    @torch.no_grad()
    def targets(self, patches: torch.Tensor, centers: torch.Tensor, code: TargetCode = "sample") -> torch.Tensor:
        """Stage II's per-patch targets (B, G, C) for patches (B, G, K, 3), centres (B, G, 3).

        ``code``: ``"sample"`` (the paper): a hard Gumbel sample at τ = 1 (stochastic); ``"argmax"``:
        the most likely code; ``"soft"``: the softmax-weighted mix of codebook vectors.
        """
        logits, idx = self.code_logits(patches, centers)
        return self.decode_codes(select_codes(logits, code), centers, idx)

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Everything but the frozen teacher's weights."""
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]
