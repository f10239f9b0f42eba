"""K nearest neighbours between two batches of point clouds."""

from __future__ import annotations

from typing import Literal

import torch

from act3d.ops._bucket_search import bucketed_knn_indices, bucketed_nearest_both_ways
from act3d.ops._checks import check_cloud, check_count, check_method, check_same_batch, compute_dtype, padding_mask
from act3d.ops._distance import distance_blocks
from act3d.ops._select import selection_block, smallest_k_
from act3d.ops.gather import gather_points

BUCKETS_FROM = ((8192, 64), (4096, 1024))
"""``method="auto"`` searches buckets on CPU when the clouds have at least one of these (points,
queries) sizes ...
"""
BUCKETS_FROM_K1 = ((2048, 512),)
"""... or of these for ``k = 1``.

Measured (1 thread, uniform clouds, AMD EPYC Zen 5, buckets ÷ dense time). k=32: 8192 points and
512 queries 0.66 (B=32), 0.73 (B=4), 1.09 (B=1); 8192 points and 64 queries 0.85 (B=32); 4096 x 4096
0.63 (B=32), 0.74 (B=1); 4096 points and 256 queries 0.82 (B=32) but 1.23 (B=4); 2048 x 2048 1.01.
k=1 (Chamfer): 1024 x 1024 0.94-1.17 (B=1-32), 2048 x 2048 0.76-0.84 (B=1-4), 4096 x 4096 0.39-0.45;
8192 points and 512 queries 0.72, 2048 points and 128 queries 1.63.
"""


def knn(
    query: torch.Tensor,
    points: torch.Tensor,
    k: int,
    query_lengths: torch.Tensor | None = None,
    point_lengths: torch.Tensor | None = None,
    memory_budget_bytes: int | None = None,
    check_finite: bool = True,
    method: Literal["auto", "dense", "buckets"] = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest points of ``points[b]`` to every point of ``query[b]``.

    Neighbours are searched without autograd, in chunks of queries so that one ``B x chunk x N``
    block of distances (``||q||² + ||p||² - 2 q·p`` as one ``bmm``, in float32, or float64 for
    float64 input, after moving each cloud's first point to the origin) stays within the memory
    budget (see :mod:`act3d.ops.memory`; one query row is the smallest block). The distances of the
    selected neighbours are then recomputed exactly as ``((q - p[idx]) ** 2).sum(-1)``, differentiably
    with respect to ``query`` and ``points`` (``O(B * M * k)`` memory for backward), and sorted.
    Ties are broken arbitrarily: compare distances, not indices. Near-ties closer than float32
    rounding of the expanded formula may select either point.

    ``method="buckets"`` searches only the parts of each cloud that can hold a neighbour (Hilbert
    buckets with bounding boxes, see :mod:`act3d.ops._bucket_search`): same result, one host sync
    per chunk, much less work for large clouds. ``"auto"`` takes it on CPU when the clouds reach
    one of the (points, queries) sizes of :data:`BUCKETS_FROM` (:data:`BUCKETS_FROM_K1` for ``k = 1``);
    ``"dense"`` always searches every point (best on GPUs).

    Args:
        query: ``(B, M, 3)`` float16, bfloat16, float32 or float64 padded query clouds.
        points: ``(B, N, 3)`` padded clouds to search, same batch size and device.
        k: neighbours per query, ``1 <= k <= min(point_lengths)``.
        query_lengths: optional ``(B,)`` int64 valid queries per cloud; rows of padded queries are
            returned as distance 0, index 0.
        point_lengths: optional ``(B,)`` int64 valid points per cloud; padded points are never returned.
        memory_budget_bytes: bytes allowed for one block of distances (default: the module setting).
        check_finite: reject NaN/Inf in the inputs (one reduction and host sync per input).
        method: ``"auto"``, ``"dense"`` or ``"buckets"`` (see above).

    Returns:
        ``dists``: ``(B, M, k)`` squared euclidean distances, ascending along the last axis, float32
        (float64 for float64 inputs); ``idx``: ``(B, M, k)`` int64 indices into ``points``.

    Raises:
        OpError: bad shape or dtype, empty cloud, NaN/Inf, batch mismatch, ``k`` larger than a
            cloud, unknown ``method``.
    """
    query, points, query_lengths, point_lengths = _validated(
        query, points, query_lengths, point_lengths, check_finite, method
    )
    check_count("k", k, points, point_lengths)
    if _use_buckets(method, query, points, k):
        idx = bucketed_knn_indices(query, points, k, point_lengths, memory_budget_bytes)
    else:
        idx = _knn_indices(query, points, k, point_lengths, memory_budget_bytes)
    return _exact_sorted(query, points, idx, query_lengths)


def nearest_both_ways(
    a: torch.Tensor,
    b: torch.Tensor,
    a_lengths: torch.Tensor | None = None,
    b_lengths: torch.Tensor | None = None,
    memory_budget_bytes: int | None = None,
    check_finite: bool = True,
    method: Literal["auto", "dense", "buckets"] = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``knn(a, b, 1)`` and ``knn(b, a, 1)`` distances, ``(B, N)`` and ``(B, M)``, in one call.

    Same validation, methods and results as the two :func:`knn` calls (padded points get distance
    0). Each ``a x b`` distance is computed once, not once per direction: the dense search reduces
    each block along both axes (:func:`_dense_nearest_both_ways`), the bucketed one encodes and
    sorts each cloud once.
    """
    a, b, a_lengths, b_lengths = _validated(a, b, a_lengths, b_lengths, check_finite, method)
    if _use_buckets(method, a, b, 1):
        a_to_b, b_to_a = bucketed_nearest_both_ways(a, b, a_lengths, b_lengths, memory_budget_bytes)
    else:
        a_to_b, b_to_a = _dense_nearest_both_ways(a, b, a_lengths, b_lengths, memory_budget_bytes)
    return _exact_sorted(a, b, a_to_b, a_lengths)[0][..., 0], _exact_sorted(b, a, b_to_a, b_lengths)[0][..., 0]


def _dense_nearest_both_ways(
    a: torch.Tensor,
    b: torch.Tensor,
    a_lengths: torch.Tensor | None,
    b_lengths: torch.Tensor | None,
    memory_budget_bytes: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N, 1)`` index of the nearest valid point of ``b`` to each point of ``a: (B, N, 3)`` and
    ``(B, M, 1)`` the other way, from one pass over the ``a x b`` distance blocks.

    Each block (a chunk of ``a``'s points against all of ``b``) gives the ``a -> b`` neighbours as in
    :func:`_knn_indices`, and, along its other axis, each ``b`` point's nearest row in the chunk:
    ``min(dim)`` with indices over a non-inner axis is not vectorised on CPU (~30x slower than
    ``amin``), so that is the column minimum, a 1/0 mask of the rows that reach it weighted by
    ``rows - i``, and its maximum (the lowest such row), as in FPS. A running minimum over the
    chunks keeps the best row. Same results as the two one-way searches, ties aside.
    """
    N, M = a.shape[1], b.shape[1]
    block = selection_block(M, 1)
    a_padded = None if a_lengths is None else padding_mask(a_lengths, N)[..., None]
    best = best_row = None
    a_to_b = []
    for rows, dist in distance_blocks(a, b, b_lengths, memory_budget_bytes, b.element_size(), multiple=block):
        if a_padded is not None:
            dist.masked_fill_(a_padded[:, rows], float("inf"))
        a_to_b.append(smallest_k_(dist, 1, block))  # leaves |dist| in the block
        column_min, row = _column_min_and_first_row_(dist)
        if best is None:
            best, best_row = column_min, row
        else:
            best_row = torch.where(column_min < best, row + rows.start, best_row)
            torch.minimum(best, column_min, out=best)
    return torch.cat(a_to_b, dim=1), best_row[:, :M, None]


def _column_min_and_first_row_(dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, n)`` minimum over the rows of ``dist: (B, r, n)`` and the lowest row that holds it (the
    last row for a NaN minimum, from non-finite input). Overwrites ``dist`` with the row mask."""
    r = dist.shape[1]
    column_min = dist.amin(1)
    weights = torch.arange(r, 0, -1, dtype=dist.dtype, device=dist.device)[:, None]  # exact up to 2**24 rows
    first = torch.eq(dist, column_min[:, None], out=dist).mul_(weights).amax(1)
    return column_min, (r - first.long()).clamp_max_(r - 1)  # a NaN minimum matches no row: the last


def _validated(
    query: torch.Tensor,
    points: torch.Tensor,
    query_lengths: torch.Tensor | None,
    point_lengths: torch.Tensor | None,
    check_finite: bool,
    method: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Checks both clouds, their lengths and ``method``; returns the clouds in the compute dtype and
    the lengths as int64 (see :func:`act3d.ops._checks.check_cloud`)."""
    check_method(method)
    query_lengths = check_cloud("query", query, query_lengths, check_finite)
    point_lengths = check_cloud("points", points, point_lengths, check_finite)
    check_same_batch("query", query, "points", points)
    dtype = compute_dtype(query, points)
    return query.to(dtype), points.to(dtype), query_lengths, point_lengths


def _use_buckets(method: str, query: torch.Tensor, points: torch.Tensor, k: int) -> bool:
    """Whether ``method`` means the bucketed search for these clouds (see :data:`BUCKETS_FROM`)."""
    if method != "auto":
        return method == "buckets"
    sizes = BUCKETS_FROM_K1 if k == 1 else BUCKETS_FROM
    large = any(points.shape[1] >= n and query.shape[1] >= m for n, m in sizes)
    return points.device.type == "cpu" and large


def _exact_sorted(
    query: torch.Tensor, points: torch.Tensor, idx: torch.Tensor, query_lengths: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact, differentiable distances to the found neighbours ``idx: (B, M, k)``, ascending, with
    their indices; padded queries get distance 0, index 0."""
    dists = (gather_points(points, idx) - query[:, :, None]).square().sum(-1)
    if idx.shape[-1] > 1:
        dists, order = dists.sort(dim=-1, stable=True)
        idx = idx.gather(-1, order)
    if query_lengths is not None:
        padded = padding_mask(query_lengths, query.shape[1])[..., None]
        dists, idx = dists.masked_fill(padded, 0), idx.masked_fill(padded, 0)
    return dists, idx


def _knn_indices(
    query: torch.Tensor,
    points: torch.Tensor,
    k: int,
    point_lengths: torch.Tensor | None,
    memory_budget_bytes: int | None,
) -> torch.Tensor:
    """``(B, M, k)`` indices of the ``k`` nearest valid points, unsorted, computed block by block."""
    block = selection_block(points.shape[1], k)
    blocks = distance_blocks(query, points, point_lengths, memory_budget_bytes, points.element_size(), multiple=block)
    return torch.cat([smallest_k_(dist, k, block) for _, dist in blocks], dim=1)
