"""Ball query: neighbours within a radius, PointNet++ style."""

from __future__ import annotations

import torch

from act3d.errors import OpError
from act3d.ops._checks import check_cloud, check_count, check_same_batch, compute_dtype, padding_mask
from act3d.ops._distance import distance_blocks


def ball_query(
    query: torch.Tensor,
    points: torch.Tensor,
    radius: float,
    k: int,
    query_lengths: torch.Tensor | None = None,
    point_lengths: torch.Tensor | None = None,
    memory_budget_bytes: int | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Up to ``k`` points of ``points[b]`` within ``radius`` of each point of ``query[b]``.

    PointNet++ convention: the result holds the *first* ``k`` points in index order (not the nearest)
    whose squared distance is ``< radius²``, in ascending index order; when fewer than ``k`` are
    found, the row is padded with the first one found. A query with no point within the radius gets
    a row of zeros (index 0, whatever its distance), as in PointNet++, as do padded queries.

    Distances come from the expanded formula in float32 (float64 for float64 input), chunked over
    queries within the memory budget (see :mod:`act3d.ops.memory`), so a point within float32
    rounding of the sphere may fall on either side. Not differentiable (indices only).

    Args:
        query: ``(B, M, 3)`` float16, bfloat16, float32 or float64 padded query clouds.
        points: ``(B, N, 3)`` padded clouds to search, same batch size and device.
        radius: positive ball radius.
        k: neighbours per query, ``1 <= k <= min(point_lengths)``.
        query_lengths: optional ``(B,)`` int64 valid queries per cloud.
        point_lengths: optional ``(B,)`` int64 valid points per cloud; padded points are never returned.
        memory_budget_bytes: bytes allowed for one chunk's temporaries (default: the module setting).
        check_finite: reject NaN/Inf in the inputs (one reduction and host sync per input).

    Returns:
        ``(B, M, k)`` int64 indices into ``points``.

    Raises:
        OpError: bad shape or dtype, empty cloud, NaN/Inf, batch mismatch, ``k`` larger than a cloud,
        non-positive radius.
    """
    query_lengths = check_cloud("query", query, query_lengths, check_finite)
    point_lengths = check_cloud("points", points, point_lengths, check_finite)
    check_same_batch("query", query, "points", points)
    check_count("k", k, points, point_lengths)
    if not radius > 0 or radius == float("inf"):
        raise OpError(f"radius must be positive and finite, got {radius}")
    dtype = compute_dtype(query, points)
    query, points = query.to(dtype), points.to(dtype)
    N = points.shape[1]
    index = torch.arange(N, dtype=torch.int32, device=points.device)
    # per entry of a chunk: the distance block, the "inside" mask and the int32 keys
    blocks = distance_blocks(query, points, point_lengths, memory_budget_bytes, points.element_size() + 5)
    keys = [torch.where(dist < radius**2, index, N).topk(k, largest=False).values for _, dist in blocks]
    idx = torch.cat(keys, dim=1).long()
    idx = torch.where(idx < N, idx, idx[..., :1])
    idx.masked_fill_(idx == N, 0)
    if query_lengths is not None:
        idx.masked_fill_(padding_mask(query_lengths, query.shape[1])[..., None], 0)
    return idx
