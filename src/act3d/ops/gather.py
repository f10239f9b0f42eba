"""Gather points (or per-point features) by index."""

from __future__ import annotations

import torch

from act3d.errors import OpError


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Picks ``points[b, idx[b, ...]]`` for every cloud ``b`` of the batch.

    Args:
        points: ``(B, N, C)`` points or features of any dtype.
        idx: ``(B, ...)`` int64 indices into the ``N`` axis, each in ``[0, N)`` (out-of-range indices
            raise torch's own IndexError/RuntimeError; they are not checked here to keep it sync-free).

    Returns:
        ``(B, ..., C)`` tensor of ``points.dtype``; differentiable with respect to ``points``.
    """
    if points.dim() != 3 or idx.dim() < 1 or idx.shape[0] != points.shape[0] or idx.dtype != torch.int64:
        raise OpError(
            f"gather_points expects points (B, N, C) and int64 idx (B, ...), got {tuple(points.shape)} "
            f"and {idx.dtype} {tuple(idx.shape)}"
        )
    B, _, C = points.shape
    flat = idx.reshape(B, -1, 1).expand(-1, -1, C)
    return points.gather(1, flat).reshape(*idx.shape, C)
