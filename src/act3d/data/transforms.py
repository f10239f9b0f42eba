"""Point-cloud transforms on item dicts, and batched versions for (B, N, 3) tensors.

Item transforms take ``{"points": (N, 3), "label": (), ...}`` and return a new dict without
modifying their input; the per-point entries (``PER_POINT_KEYS``) stay aligned when points are
reordered or subsampled.

Random transforms draw from ``generator`` when one is given, else from torch's global RNG, which a
``DataLoader`` seeds differently in each worker. A generator given here is copied into every worker
with the same state, so every worker would draw the same numbers: pass one for single-process
work and tests.

The official code augments whole batches on the GPU after ``.cuda()``; ``ScaleAndTranslate.batch``
and ``RotateUp.batch`` do the same on (B, N, 3) tensors of any device, one draw per cloud (the
B x 3 parameters are drawn on the CPU and moved, which is cheap).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from act3d.errors import ConfigError

Item = dict[str, Tensor]
PER_POINT_KEYS = ("points", "normals", "parts")
SAMPLING_METHODS = ("fps", "random", "first")


def subsample_indices(points: Tensor, n: int, method: str = "fps", generator: torch.Generator | None = None) -> Tensor:
    """Indices (n,) choosing ``n`` of the P points of ``points`` (P, 3).

    'fps': farthest point sampling from the first point (deterministic); 'random': a random subset
    without replacement; 'first': the first n. When P == n the points are kept as they are. When
    P < n every point is kept once and the rest are repeats (random ones for 'random', cyclic
    otherwise).
    """
    if method not in SAMPLING_METHODS:
        raise ConfigError(f"sampling method {method!r} is not one of {SAMPLING_METHODS}")
    P = points.shape[0]
    if n >= P:
        extra = torch.randint(P, (n - P,), generator=generator) if method == "random" else torch.arange(n - P) % P
        return torch.cat([torch.arange(P), extra])
    if method == "random":
        return torch.randperm(P, generator=generator)[:n]
    if method == "first":
        return torch.arange(n)
    from act3d.ops import farthest_point_sample

    return farthest_point_sample(points[None], n)[0]


def take(item: Item, idx: Tensor) -> Item:
    """The item with every per-point entry indexed by ``idx``."""
    return {k: v[idx] if k in PER_POINT_KEYS else v for k, v in item.items()}


class Subsample:
    """Keep ``n`` points chosen by ``method`` (see :func:`subsample_indices`), parts aligned.

    ModelNet40 training (ACT): a dataset giving FPS 1200 points, then ``Subsample(1024, 'random')``.
    """

    def __init__(self, n: int, method: str = "fps", generator: torch.Generator | None = None) -> None:
        if n <= 0 or method not in SAMPLING_METHODS:
            raise ConfigError(f"Subsample needs n > 0 and method in {SAMPLING_METHODS}, got {n}, {method!r}")
        self.n, self.method, self.generator = n, method, generator

    def __call__(self, item: Item) -> Item:
        return take(item, subsample_indices(item["points"], self.n, self.method, self.generator))


class ScaleAndTranslate:
    """``points * s + t`` with per-axis ``s ~ U[scale_low, scale_high]^3``, ``t ~ U[-shift, shift]^3``.

    Defaults are ACT's pre-training augmentation; ShapeNetPart fine-tuning uses (0.8, 1.25, 0.1) with
    ``isotropic=True`` (one scale for the three axes, as PointNet++'s ``random_scale_point_cloud``).
    Normals, when present, are mapped by ``1 / s`` and renormalised.
    """

    def __init__(
        self,
        scale_low: float = 2 / 3,
        scale_high: float = 3 / 2,
        shift: float = 0.2,
        generator: torch.Generator | None = None,
        isotropic: bool = False,
    ) -> None:
        self.scale_low, self.scale_high, self.shift, self.generator = scale_low, scale_high, shift, generator
        self.isotropic = isotropic

    def _draw(self, batch: int) -> tuple[Tensor, Tensor]:
        u = torch.rand(2, batch, 3, generator=self.generator)
        scale = u[0, :, :1].expand(-1, 3) if self.isotropic else u[0]
        return self.scale_low + (self.scale_high - self.scale_low) * scale, self.shift * (2 * u[1] - 1)

    def __call__(self, item: Item) -> Item:
        scale, shift = self._draw(1)
        out = dict(item, points=item["points"] * scale + shift)
        if "normals" in item:
            out["normals"] = F.normalize(item["normals"] / scale, dim=-1)
        return out

    def batch(self, points: Tensor) -> Tensor:
        """Augment (B, N, 3) clouds on their device, one scale and shift per cloud."""
        scale, shift = (t.to(points)[:, None] for t in self._draw(points.shape[0]))
        return points * scale + shift


class RotateUp:
    """Rotate by a random angle in [0, 2π) about the up ``axis`` (ShapeNet/ScanObjectNN are y-up).

    Norms and the up coordinate are preserved; normals rotate with the points.
    """

    def __init__(self, axis: str = "y", generator: torch.Generator | None = None) -> None:
        if axis not in ("x", "y", "z"):
            raise ConfigError(f"RotateUp axis must be 'x', 'y' or 'z', got {axis!r}")
        self.axis, self.generator = axis, generator

    def _matrices(self, batch: int) -> Tensor:
        """Rotation matrices (batch, 3, 3) about the up axis."""
        angle = torch.rand(batch, generator=self.generator) * (2 * math.pi)
        a = "xyz".index(self.axis)
        i, j = (a + 1) % 3, (a + 2) % 3
        R = torch.eye(3).repeat(batch, 1, 1)
        R[:, i, i], R[:, i, j], R[:, j, i], R[:, j, j] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
        return R

    def __call__(self, item: Item) -> Item:
        R = self._matrices(1)[0]
        out = dict(item, points=item["points"] @ R.T)
        if "normals" in item:
            out["normals"] = item["normals"] @ R.T
        return out

    def batch(self, points: Tensor) -> Tensor:
        """Rotate (B, N, 3) clouds on their device, one angle per cloud."""
        return points @ self._matrices(points.shape[0]).to(points).transpose(1, 2)


class Jitter:
    """Add Gaussian noise of std ``sigma`` clipped to ``[-clip, clip]`` to every coordinate."""

    def __init__(self, sigma: float = 0.01, clip: float = 0.05, generator: torch.Generator | None = None) -> None:
        self.sigma, self.clip, self.generator = sigma, clip, generator

    def __call__(self, item: Item) -> Item:
        points = item["points"]
        noise = torch.randn(points.shape, generator=self.generator).to(points) * self.sigma
        return dict(item, points=points + noise.clamp(-self.clip, self.clip))


class Compose:
    """Apply item transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Item], Item]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, item: Item) -> Item:
        for t in self.transforms:
            item = t(item)
        return item
