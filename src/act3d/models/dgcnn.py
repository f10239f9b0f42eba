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
            f = layer(_edge_features(f, idx)).amax(dim=-1)
            outs.append(f)
        return self.layer5(torch.cat(outs, dim=1)).transpose(1, 2)


def _edge_features(f: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """f (B, C, G), neighbour idx (B, G, k) → (B, 2C, G, k) = [f_j − f_i, f_i]."""
    neighbours = gather_points(f.transpose(1, 2), idx).permute(0, 3, 1, 2)
    center = f.unsqueeze(-1).expand(-1, -1, -1, idx.shape[-1])
    return torch.cat([neighbours - center, center], dim=1)
