"""The DGCNN that runs over patch centres in ACT's stage-I autoencoder (Point-BERT's ``DGCNN``)."""

from __future__ import annotations

import torch
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
        when the caller already has it (another DGCNN over the same centres)."""
        idx = self.neighbours(centers) if idx is None else idx
        f = self.input_trans(tokens.transpose(1, 2))
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            f = _edge_conv_max(layer, f, idx)
            outs.append(f)
        return self.layer5(torch.cat(outs, dim=1)).transpose(1, 2)


def _edge_conv_max(layer: nn.Sequential, f: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """One edge convolution, max over neighbours: f (B, C, G), idx (B, G, k) → (B, C', G).

    The 1×1 convolution ``W`` of the edge feature ``[f_j − f_i ; f_i]`` is ``W₁ f_j + (W₂ − W₁) f_i``:
    two products per centre, the first gathered over its neighbours, instead of one product per edge
    (k times fewer multiply-adds); then GroupNorm, LeakyReLU and the max over the k edges, as before.
    """
    conv, norm, act = layer
    c = f.shape[1]
    weight = conv.weight[:, :, 0, 0]  # (C', 2C)
    x = f.transpose(1, 2)  # (B, G, C)
    neighbour = x @ weight[:, :c].T  # (B, G, C')
    center = x @ (weight[:, c:] - weight[:, :c]).T
    edges = gather_points(neighbour, idx) + center.unsqueeze(2)  # (B, G, k, C')
    return act(norm(edges.permute(0, 3, 1, 2))).amax(dim=-1)
