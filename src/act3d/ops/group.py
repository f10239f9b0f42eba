"""Grouping of a cloud into local patches around centres."""

from __future__ import annotations

import torch

from act3d.ops.gather import gather_points
from act3d.ops.knn import knn


def group(
    points: torch.Tensor,
    centers: torch.Tensor,
    k: int,
    point_lengths: torch.Tensor | None = None,
    center_lengths: torch.Tensor | None = None,
    memory_budget_bytes: int | None = None,
    check_finite: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local patches: the ``k`` nearest points of each centre, relative to that centre.

    Neighbours come from :func:`knn` (same chunking and memory budget) and are ordered nearest first,
    so a centre that is itself a point of the cloud (as after :func:`farthest_point_sample`) comes
    first with offset 0 (or one of its duplicates does).

    Args:
        points: ``(B, N, 3)`` float16, bfloat16, float32 or float64 padded clouds.
        centers: ``(B, G, 3)`` patch centres, same batch size and device.
        k: points per patch, ``1 <= k <= min(point_lengths)``.
        point_lengths: optional ``(B,)`` int64 valid points per cloud; padded points never appear.
        center_lengths: optional ``(B,)`` int64 valid centres per cloud; padded centres get index 0.
        memory_budget_bytes: bytes allowed for one block of distances (default: the module setting).
        check_finite: reject NaN/Inf in the inputs.

    Returns:
        ``patches``: ``(B, G, k, 3)`` ``points[idx] - centers`` in the promoted dtype of the inputs,
        differentiable with respect to both; ``idx``: ``(B, G, k)`` int64 indices into ``points``.

    Raises:
        OpError: as :func:`knn`.
    """
    _, idx = knn(centers, points, k, center_lengths, point_lengths, memory_budget_bytes, check_finite)
    return gather_points(points, idx) - centers[:, :, None], idx
