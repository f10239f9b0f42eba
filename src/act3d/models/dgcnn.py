"""The DGCNN that runs over patch centres in ACT's stage-I autoencoder (Point-BERT's ``DGCNN``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from act3d.ops import gather_points, knn


def _edge_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.GroupNorm(4, out_ch), nn.LeakyReLU(0.2))


class CenterDGCNN(nn.Module):
    """Four edge convolutions over the kNN graph of centres, concatenated (2304) → ``out_dim``.

    Edge features are ``[f_j − f_i, f_i]`` over the ``k`` nearest centres (k=4); widths 256/512/512/1024
    with GroupNorm(4) and LeakyReLU(0.2), as in docs/method.md.

    Args:
        in_dim: token width entering (256 after the mini-PointNet, 384 for the decoder side).
        out_dim: output width (codebook size for the encoder side, decoder width for the other).
        k: neighbours in the centre graph.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 4) -> None:
        super().__init__()
        self.k = k
        self.input_trans = nn.Conv1d(in_dim, 128, 1)
        self.layer1 = _edge_conv(256, 256)
        self.layer2 = _edge_conv(512, 512)
        self.layer3 = _edge_conv(1024, 512)
        self.layer4 = _edge_conv(1024, 1024)
        self.layer5 = nn.Sequential(
            nn.Conv1d(2304, out_dim, 1, bias=False), nn.GroupNorm(4, out_dim), nn.LeakyReLU(0.2)
        )

    def neighbours(self, centers: torch.Tensor) -> torch.Tensor:
        """centres (B, G, 3) → (B, G, k) indices of each centre's ``k`` nearest centres (itself first)."""
        return knn(centers, centers, min(self.k, centers.shape[1]), check_finite=False)[1]  # FPS checked them

    def forward(self, tokens: torch.Tensor, centers: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, G, in_dim), centres (B, G, 3) → (B, G, out_dim); ``idx`` from :meth:`neighbours`
        when the caller already has it (another DGCNN over the same centres).

        Computed channel-last, the 1×1 convolutions as products with their (unchanged) weights: no
        layout copies between the layers, the same numbers as the convolutions.
        """
        idx = self.neighbours(centers) if idx is None else idx
        f = F.linear(tokens, self.input_trans.weight.flatten(1), self.input_trans.bias)  # (B, G, 128)
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            f = _edge_conv_max(layer, f, idx)
            outs.append(f)
        conv, norm, act = self.layer5
        return act(group_norm_last(F.linear(torch.cat(outs, dim=-1), conv.weight.flatten(1)), norm))


def _edge_conv_max(layer: nn.Sequential, f: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """One edge convolution, max over neighbours: f (B, G, C), idx (B, G, k) → (B, G, C').

    The 1×1 convolution ``W`` of the edge feature ``[f_j − f_i ; f_i]`` is ``W₁ f_j + (W₂ − W₁) f_i``:
    two products per centre, the first gathered over its neighbours, instead of one product per edge
    (k times fewer multiply-adds); then GroupNorm, LeakyReLU and the max over the k edges, as before.
    """
    conv, norm, act = layer
    c = f.shape[-1]
    weight = conv.weight.flatten(1)  # (C', 2C); a view, so its gradient is not a zero-filled copy
    neighbour = f @ weight[:, :c].T  # (B, G, C')
    center = f @ (weight[:, c:] - weight[:, :c]).T
    edges = gather_points(neighbour, idx) + center.unsqueeze(2)  # (B, G, k, C')
    return act(group_norm_last(edges, norm)).amax(dim=2)


def group_norm_last(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``norm`` (a GroupNorm over channels) applied to channel-last x (B, ..., C) without moving C first.

    The statistics take two plain passes (the mean, then the mean square about it), each a reduction
    over the leading axis of (B, N, C): as accurate as ``var_mean``, whose Welford loop is ~40× slower
    on this strided reduction. The centred tensor of the second pass is the one normalised.
    """
    b, c, groups = x.shape[0], x.shape[-1], norm.num_groups
    flat = x.reshape(b, -1, c)

    def per_group(per_channel: torch.Tensor) -> torch.Tensor:  # (B, C) → (B, 1, C), averaged within groups
        grouped = per_channel.view(b, groups, c // groups).mean(dim=-1, keepdim=True)
        return grouped.expand(b, groups, c // groups).reshape(b, 1, c)

    centred = flat - per_group(flat.mean(dim=1))
    rstd = torch.rsqrt(per_group(centred.square().mean(dim=1)) + norm.eps)
    normed = (centred * rstd).reshape(x.shape)
    return normed * norm.weight + norm.bias if norm.affine else normed
