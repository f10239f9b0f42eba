"""Chamfer distance between two batches of point clouds."""

from __future__ import annotations

from typing import Literal

import torch

from act3d.errors import OpError
from act3d.ops.knn import nearest_both_ways


def chamfer_distance(
    a: torch.Tensor,
    b: torch.Tensor,
    norm: Literal[1, 2] = 2,
    a_lengths: torch.Tensor | None = None,
    b_lengths: torch.Tensor | None = None,
    reduction: Literal["mean", "sum", "none"] = "mean",
    memory_budget_bytes: int | None = None,
    check_finite: bool = True,
    method: Literal["auto", "dense", "buckets"] = "auto",
) -> torch.Tensor:
    """Symmetric Chamfer distance, per cloud pair, reduced over the batch.

    With ``d(x, Y) = min_y ||x - y||²`` and means over the valid points of each cloud:

    - ``norm=2`` (Point-MAE ``ChamferDistanceL2``): ``mean_i d(a_i, b) + mean_j d(b_j, a)``,
      squared distances, the two directions summed (not halved).
    - ``norm=1`` (ACT / Point-BERT "CD-L1", ``ChamferDistanceL1``):
      ``(mean_i sqrt d(a_i, b) + mean_j sqrt d(b_j, a)) / 2``, euclidean distances, halved.
      The square root is taken as ``sqrt`` where ``d > 0`` and 0 with gradient 0 where ``d == 0``
      (coincident points), so no NaN gradients and no epsilon bias; a NaN distance stays NaN.

    Memory: nearest neighbours are found as by :func:`knn` (chunked under ``torch.no_grad()`` within
    the memory budget, never a full ``B x N x M`` matrix when it exceeds the budget); only the
    ``O(B * (N + M))`` distances to the found neighbours are recomputed with autograd, so backward
    needs ``O(B * (N + M))`` memory. Gradients flow to both ``a`` and ``b``; the nearest-neighbour
    assignment is piecewise constant, as in every Chamfer implementation.

    Args:
        a: ``(B, N, 3)`` float16, bfloat16, float32 or float64 padded clouds.
        b: ``(B, M, 3)`` padded clouds, same batch size and device.
        norm: 1 or 2, see above.
        a_lengths: optional ``(B,)`` int64 valid points of each cloud of ``a``.
        b_lengths: optional ``(B,)`` int64 valid points of each cloud of ``b``.
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` for the ``(B,)`` per-pair values.
        memory_budget_bytes: bytes allowed for one block of distances (default: the module setting).
        check_finite: reject NaN/Inf in the inputs.
        method: how :func:`knn` searches (``"auto"``, ``"dense"`` or ``"buckets"``).

    Returns:
        A scalar (or ``(B,)`` for ``reduction="none"``), float32 (float64 for float64 input).

    Raises:
        OpError: as :func:`knn`, or an unknown ``norm`` / ``reduction``.
    """
    if norm not in (1, 2):
        raise OpError(f"norm must be 1 or 2, got {norm!r}")
    if reduction not in ("mean", "sum", "none"):
        raise OpError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    a_to_b, b_to_a = nearest_both_ways(a, b, a_lengths, b_lengths, memory_budget_bytes, check_finite, method)
    if norm == 1:
        a_to_b, b_to_a = _safe_sqrt(a_to_b), _safe_sqrt(b_to_a)
    per_pair = _mean(a_to_b, a_lengths) + _mean(b_to_a, b_lengths)
    if norm == 1:
        per_pair = per_pair / 2
    if reduction == "none":
        return per_pair
    return per_pair.mean() if reduction == "mean" else per_pair.sum()


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient at 0 is 0 instead of ``inf`` (which would give NaN);
    NaN stays NaN, so a non-finite input unchecked by ``check_finite=False`` still shows in the loss."""
    zero = x == 0
    return torch.where(zero, 0, torch.where(zero, 1, x).sqrt())


def _mean(values: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Per-cloud mean of ``values: (B, N)`` over the first ``lengths[b]`` entries (padded entries are 0)."""
    if lengths is None:
        return values.mean(1)
    return values.sum(1) / lengths.to(device=values.device, dtype=values.dtype)
