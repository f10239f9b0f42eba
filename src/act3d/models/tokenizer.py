"""Point tokenizer: FPS centres, kNN patches and the mini-PointNet that turns each patch into a token.

Shared by the stage-I autoencoder, the stage-II student and every downstream model (docs/method.md).
"""

from __future__ import annotations

import torch
from torch import nn

from act3d.ops import farthest_point_sample, gather_points, group


class PatchGrouper(nn.Module):
    """Split clouds into ``num_groups`` patches of ``group_size`` points around FPS centres.

    Args:
        num_groups: G, number of FPS centres.
        group_size: K, points per patch (kNN over the whole cloud).
        skip_near_origin: FPS never picks points with ``|p|² <= 1e-3`` after the first, as the
            official CUDA kernel (to match its grouping exactly; see ``farthest_point_sample``).
    """

    def __init__(self, num_groups: int, group_size: int, skip_near_origin: bool = False) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.group_size = group_size
        self.skip_near_origin = skip_near_origin

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (B, N, 3) → (patches (B, G, K, 3) relative to their centre, centres (B, G, 3))."""
        idx = farthest_point_sample(points, self.num_groups, start="first", skip_near_origin=self.skip_near_origin)
        centers = gather_points(points, idx)
        patches, _ = group(points, centers, self.group_size, check_finite=False)  # FPS checked the points
        return patches, centers


class MiniPointNet(nn.Module):
    """Per-patch encoder: 3→128→256, max-pool, concat global+local (512) → 512 → ``dim``, max-pool.

    The official code uses ``Conv1d(kernel_size=1)``; these are the same maps as ``Linear`` layers on
    channels-last points, which run faster on CPUs. Parameter names match the official ones (the
    official conv weights only carry an extra trailing dimension of size 1).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.first_conv = nn.Sequential(
            nn.Linear(3, 128), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Linear(128, 256)
        )
        self.second_conv = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, dim)
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """patches (B, G, K, 3) → tokens (B, G, dim)."""
        b, g, k, _ = patches.shape
        x = self.first_conv(patches.reshape(b * g * k, 3)).view(b * g, k, 256)
        pooled = x.amax(dim=1, keepdim=True)
        x = torch.cat([pooled.expand(-1, k, -1), x], dim=2)
        x = self.second_conv(x.view(b * g * k, 512)).view(b * g, k, self.dim)
        return x.amax(dim=1).view(b, g, self.dim)


def position_mlp(dim: int, hidden: int = 128) -> nn.Sequential:
    """The MLP position embedding of Point-MAE/ACT: centres (…, 3) → (…, dim)."""
    return nn.Sequential(nn.Linear(3, hidden), nn.GELU(), nn.Linear(hidden, dim))
