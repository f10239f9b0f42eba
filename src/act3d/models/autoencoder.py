"""ACT stage I: the cross-modal discrete autoencoder around a frozen pretrained transformer.

points → patches → mini-PointNet → DGCNN₁ → codebook logits → Gumbel-softmax → codebook → Linear to
the teacher width → prompted frozen teacher → Linear back → DGCNN₂ → FoldingNet coarse + fine patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from act3d.models.dgcnn import CenterDGCNN
from act3d.models.folding import FoldingDecoder
from act3d.models.prompted import PromptedTeacher
from act3d.models.teachers import build_teacher
from act3d.models.tokenizer import MiniPointNet, PatchGrouper
from act3d.util.config import Strict

TargetCode = Literal["sample", "argmax", "soft"]

PAPER_AUTOENCODER = dict(
    num_groups=64, group_size=32, encoder_dim=384, codebook_size=8192, token_dim=384, logit_scale=1.0
)
"""The official stage-I sizes (64×32 patches, a 384-wide mini-PointNet, 8192 codes of 384): written once;
``ACTAutoencoder``'s and ``AutoencoderConfig``'s defaults read them."""


def sample_codes(logits: torch.Tensor) -> torch.Tensor:
    """Code indices (B, G) int64 drawn from softmax(logits (B, G, V)): the code a hard Gumbel-softmax
    sample at τ = 1 picks, with the same distribution, from one uniform per patch (inverse CDF) instead
    of V Gumbel draws and a one-hot: the noise of the stage-II target costs B·G random numbers."""
    cdf = logits.float().softmax(-1).cumsum(-1)
    u = torch.rand((*cdf.shape[:-1], 1), device=cdf.device) * cdf[..., -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp_max(cdf.shape[-1] - 1)


def code_indices(logits: torch.Tensor, code: Literal["sample", "argmax"] = "sample") -> torch.Tensor:
    """Hard code indices (B, G) from logits (B, G, V): a sample (:func:`sample_codes`) or the argmax."""
    return sample_codes(logits) if code == "sample" else logits.argmax(-1)


def select_codes(logits: torch.Tensor, code: TargetCode = "sample") -> torch.Tensor:
    """Code weights (B, G, V) float32 from logits (B, G, V): the one-hot of a sample at τ = 1 (``sample``)
    or of the argmax (``argmax``), or the softmax (``soft``)."""
    logits = logits.float()
    if code == "soft":
        return logits.softmax(-1)
    return F.one_hot(code_indices(logits, code), logits.shape[-1]).to(logits.dtype)


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
        num_groups: int = PAPER_AUTOENCODER["num_groups"],
        group_size: int = PAPER_AUTOENCODER["group_size"],
        encoder_dim: int = PAPER_AUTOENCODER["encoder_dim"],
        codebook_size: int = PAPER_AUTOENCODER["codebook_size"],
        token_dim: int = PAPER_AUTOENCODER["token_dim"],
        logit_scale: float = PAPER_AUTOENCODER["logit_scale"],
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
        return self.decode_vectors(codes.to(self.codebook.dtype) @ self.codebook, centers, idx)

    def decode_indices(
        self, index: torch.Tensor, centers: torch.Tensor, idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Code indices (B, G), centres (B, G, 3) → DGCNN₂ features (B, G, C); the same as
        :meth:`decode_codes` of their one-hots, by a row lookup instead of a (B·G × V) @ (V × C) product."""
        return self.decode_vectors(F.embedding(index, self.codebook), centers, idx)

    def decode_vectors(
        self, vectors: torch.Tensor, centers: torch.Tensor, idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Codebook-space vectors (B, G, C), centres (B, G, 3) → DGCNN₂ features (B, G, C)."""
        x = self.from_teacher(self.teacher(self.to_teacher(vectors), centers))
        return self.dgcnn_2(x, centers, idx if self.dgcnn_2.k == self.dgcnn_1.k else None)

    @torch.no_grad()
    def targets(self, patches: torch.Tensor, centers: torch.Tensor, code: TargetCode = "sample") -> torch.Tensor:
        """Stage II's per-patch targets (B, G, C) for patches (B, G, K, 3), centres (B, G, 3).

        ``code``: ``"sample"`` (the paper): a hard Gumbel sample at τ = 1 (stochastic); ``"argmax"``:
        the most likely code; ``"soft"``: the softmax-weighted mix of codebook vectors.
        """
        logits, idx = self.code_logits(patches, centers)
        if code == "soft":
            return self.decode_codes(select_codes(logits, code), centers, idx)
        return self.decode_indices(code_indices(logits, code), centers, idx)

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Everything but the frozen teacher's weights."""
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]


class TeacherConfig(Strict):
    """The frozen pretrained transformer and its prompts (paper: vit_base_patch16_384, VPT-Deep 64)."""

    name: str = "dinov2_vits14_imgfocus"
    weights: str | None = None
    num_blocks: int | None = Field(None, gt=0)
    prompts: int = Field(64, ge=0)
    prompt_mode: Literal["deep", "shallow", "none"] = "deep"
    prompt_dropout: float = Field(0.1, ge=0, lt=1)


class AutoencoderConfig(Strict):
    """Stage-I sizes (paper: 64×32 patches, PointNet 384 as the official ACT stage-I config, codebook 8192×384).

    ``logit_scale`` multiplies the codebook logits (paper: 1; see ``ACTAutoencoder``).
    """

    num_groups: int = Field(PAPER_AUTOENCODER["num_groups"], gt=0)
    group_size: int = Field(PAPER_AUTOENCODER["group_size"], gt=0)
    encoder_dim: int = Field(PAPER_AUTOENCODER["encoder_dim"], gt=0)
    codebook_size: int = Field(PAPER_AUTOENCODER["codebook_size"], gt=0)
    token_dim: int = Field(PAPER_AUTOENCODER["token_dim"], gt=0)
    logit_scale: float = Field(PAPER_AUTOENCODER["logit_scale"], gt=0)


def build_autoencoder(teacher: TeacherConfig, sizes: AutoencoderConfig) -> ACTAutoencoder:
    """The stage-I model: the frozen trunk ``teacher.name`` with its prompts, inside an autoencoder of ``sizes``."""
    trunk = build_teacher(teacher.name, teacher.weights, teacher.num_blocks)
    prompted = PromptedTeacher(trunk, teacher.prompts, teacher.prompt_mode, teacher.prompt_dropout)
    return ACTAutoencoder(prompted, **sizes.model_dump())
