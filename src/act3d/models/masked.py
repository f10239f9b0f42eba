"""Stage II: the masked point model (student encoder + light decoder) shared by ACT and Point-MAE.

The encoder only ever receives the visible tokens; the decoder sees [visible ; mask tokens] and its
outputs at the masked positions are mapped by ``head`` to what the objective predicts: the teacher's
per-token features (ACT) or the masked patches' points (Point-MAE).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from timm.layers import trunc_normal_
from torch import nn

from act3d.models.point_transformer import PointEncoder
from act3d.models.tokenizer import position_mlp
from act3d.models.transformer import TransformerStack
from act3d.util.config import Strict

MaskType = Literal["random", "block"]


PAPER_MASKING = dict(ratio=0.8, type="random")
"""ACT's masking (Point-MAE's ratio is 0.6): written once, read by ``MaskedPointModel`` and ``MaskingConfig``."""


class MaskingConfig(Strict):
    """Which patches the student does not see (defaults: :data:`PAPER_MASKING`)."""

    ratio: float = Field(PAPER_MASKING["ratio"], gt=0, lt=1)
    type: MaskType = PAPER_MASKING["type"]


def random_mask(
    batch: int, groups: int, ratio: float, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B, G) bool, True = masked: exactly ``int(ratio·G)`` patches per cloud, uniformly at random
    (drawn from ``generator`` on its device when given, else from the global generator on ``device``)."""
    num_mask = int(ratio * groups)
    where = device if generator is None else generator.device
    order = torch.rand(batch, groups, device=where, generator=generator).to(device).argsort(dim=1)
    mask = torch.zeros(batch, groups, dtype=torch.bool, device=device)
    mask.scatter_(1, order[:, :num_mask], True)
    return mask


def block_mask(centers: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, G) bool: the ``int(ratio·G)`` centres nearest a random centre of each cloud (Point-MAE 'block')."""
    b, g, _ = centers.shape
    num_mask = int(ratio * g)
    where = centers.device if generator is None else generator.device
    pick = torch.randint(g, (b,), device=where, generator=generator).to(centers.device)
    seed = centers[torch.arange(b, device=centers.device), pick]
    order = (centers - seed[:, None]).square().sum(-1).argsort(dim=1)
    mask = torch.zeros(b, g, dtype=torch.bool, device=centers.device)
    mask.scatter_(1, order[:, :num_mask], True)
    return mask


def split_tokens(mask: torch.Tensor, num_masked: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(B, G - M)`` of the visible and ``(B, M)`` of the masked tokens of ``mask`` (B, G) bool,
    which holds exactly ``M = num_masked`` True per row; each in increasing order, as boolean indexing
    would give them, but without its host synchronisation (one stable ``argsort``).

    The count is checked on CPU only, where the check costs no synchronisation.
    """
    g = mask.shape[1]
    if mask.device.type == "cpu" and not bool((mask.sum(1) == num_masked).all()):
        raise ValueError(f"every row of the mask must hide {num_masked} of its {g} tokens, got {mask.sum(1).tolist()}")
    order = mask.to(torch.int32).argsort(dim=1, stable=True)
    return order[:, : g - num_masked], order[:, g - num_masked :]


def take_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[b, idx[b]]``: tokens ``x`` (B, G, ...) at ``idx`` (B, M) int64 → (B, M, ...)."""
    index = idx.view(*idx.shape, *(1,) * (x.dim() - 2)).expand(-1, -1, *x.shape[2:])
    return x.gather(1, index)


class MaskedPointModel(nn.Module):
    """Student encoder on visible patches + ``decoder_depth``-block decoder + linear head.

    Args:
        encoder: the student :class:`PointEncoder` (its CLS output is not decoded).
        out_dim: head width (384 for ACT's teacher features, 3·K for Point-MAE points).
        mask_ratio: fraction of patches hidden (0.8 ACT, 0.6 Point-MAE).
        mask_type: ``random`` (paper) or ``block``.
        decoder_depth, decoder_heads: the light decoder (2 blocks, 6 heads).
        decoder_drop_path: its stochastic depth, rising linearly from 0 to this over its blocks (the
            official decoder shares the encoder's rate, 0.1); its Linear layers are Xavier-initialised.
        embed_visible_only: the mini-PointNet embeds only the visible patches. Faster, but its
            BatchNorm batch statistics then come from the visible patches alone; the official model
            (and the default) embeds all patches and then selects, which is what the paper trained.
    """

    def __init__(
        self,
        encoder: PointEncoder,
        out_dim: int,
        mask_ratio: float = PAPER_MASKING["ratio"],
        mask_type: MaskType = PAPER_MASKING["type"],
        decoder_depth: int = 2,
        decoder_heads: int = 6,
        decoder_drop_path: float = 0.1,
        embed_visible_only: bool = False,
    ) -> None:
        super().__init__()
        dim = encoder.dim
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.mask_type = mask_type
        self.embed_visible_only = embed_visible_only
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos_embed = position_mlp(dim)
        self.decoder = TransformerStack(dim, decoder_depth, decoder_heads, drop_path=decoder_drop_path, init="xavier")
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_dim)
        trunc_normal_(self.mask_token, std=0.02)

    def num_masked(self, num_tokens: int) -> int:
        """Tokens hidden out of ``num_tokens``: ``int(mask_ratio · G)``, as both masks hide."""
        return int(self.mask_ratio * num_tokens)

    def make_mask(self, centers: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, G) bool, True = masked, ``num_masked(G)`` per row, drawn from ``generator`` if given."""
        b, g, _ = centers.shape
        if self.mask_type == "block":
            return block_mask(centers, self.mask_ratio, generator)
        return random_mask(b, g, self.mask_ratio, centers.device, generator)

    def split(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(visible (B, G - M), masked (B, M)) token indices of a :meth:`make_mask` mask."""
        return split_tokens(mask, self.num_masked(mask.shape[1]))

    def forward(
        self, patches: torch.Tensor, centers: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """patches (B, G, K, 3), centres (B, G, 3), mask (B, G) from :meth:`make_mask` →
        (predictions for masked patches (B, M, out_dim), encoder output of visible tokens (B, 1+V, dim)).

        Masked tokens come in increasing index order (``take_tokens(x, self.split(mask)[1])`` gives
        the matching targets); no host synchronisation.
        """
        b = mask.shape[0]
        visible, masked = self.split(mask)
        vis_centers, mask_centers = take_tokens(centers, visible), take_tokens(centers, masked)
        if self.embed_visible_only:
            tokens = self.encoder.patch_embed(take_tokens(patches, visible))
        else:
            tokens = take_tokens(self.encoder.patch_embed(patches), visible)
        encoded = self.encoder.encode_tokens(tokens, vis_centers)
        x = torch.cat([encoded[:, 1:], self.mask_token.expand(b, masked.shape[1], -1)], dim=1)
        pos = self.decoder_pos_embed(torch.cat([vis_centers, mask_centers], dim=1))
        x = self.decoder(x, pos)
        return self.head(self.decoder_norm(x[:, -masked.shape[1] :])), encoded
