"""Normalisation of clouds to the unit sphere (the datasets' and the encoder's ``normalize`` step)."""

from __future__ import annotations

import torch
from torch import Tensor


def normalize_unit_sphere(points: Tensor) -> Tensor:
    """Centre clouds (..., N, 3) on their centroid and scale them to max norm 1.

    Each cloud is first divided by its largest absolute coordinate, so coordinates up to the
    dtype's largest finite value do not overflow the squared norms, and the centroid is summed in
    float64 (float32 on MPS), so a cloud of one repeated point is centred to exact zeros (and left at zero).
    """
    extent = points.abs().amax(dim=(-2, -1), keepdim=True)
    points = points / extent.clamp_min(torch.finfo(points.dtype).tiny)
    accumulate = torch.float32 if points.device.type == "mps" else torch.float64  # MPS has no float64
    centered = points - points.mean(dim=-2, keepdim=True, dtype=accumulate).to(points.dtype)
    radius = centered.norm(dim=-1).amax(dim=-1)[..., None, None]
    return centered / radius.clamp_min(torch.finfo(points.dtype).tiny)
