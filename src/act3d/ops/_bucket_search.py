"""Exact k-nearest-neighbour search that skips far buckets: the CPU path of :func:`knn` for large clouds.

Both clouds are sorted along one Hilbert curve and cut into buckets with bounding boxes: point
buckets of :data:`BUCKET_SIZE`, query buckets of about as much space (fewer queries when they are
sparser than the points). For each query bucket an upper bound ``U`` of its queries' ``k``-th
neighbour distance comes from the point buckets next to it on the curve; only the point buckets
whose box is within ``U`` of the query bucket's box can hold a neighbour, and only those are
searched, with the same distance blocks as the dense path (:func:`act3d.ops._distance.sq_distances`).
Exact: every skipped bucket is provably farther than ``k`` points already seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from act3d.ops._checks import padding_mask
from act3d.ops._curve import BITS, curve_codes, grid_frame, sort_codes
from act3d.ops._distance import point_rows, query_rows, sq_distances
from act3d.ops._select import kth_smallest_, selection_block, smallest_k_
from act3d.ops.memory import query_chunk

BUCKET_SIZE = 32
"""Points per bucket (16 makes the bucket-pair bounds cost more than they save, 64 prunes less)."""

_BOUND_SLACK = 1e-4
"""Widening of the upper bound (relative, plus 1e-6 of the squared grid side), far above the
rounding of the expanded distance formula (~1e-7 of the squared diameter in float32)."""


@torch.no_grad()
def bucketed_knn_indices(
    query: torch.Tensor,
    points: torch.Tensor,
    k: int,
    point_lengths: torch.Tensor | None,
    memory_budget_bytes: int | None,
) -> torch.Tensor:
    """``(B, M, k)`` int64 indices of the ``k`` nearest valid points, unsorted, as ``_knn_indices``.

    Args:
        query: ``(B, M, 3)`` float32 or float64, validated.
        points: ``(B, N, 3)`` same dtype, validated, at least ``k`` valid points per cloud.
        k: neighbours per query.
        point_lengths: optional ``(B,)`` int64 valid points per cloud.
        memory_budget_bytes: budget of one block of distances (default: the module setting).
    """
    q, p, side = _sort_pair(query, points)
    return _directional(q, p, k, point_lengths, side, memory_budget_bytes)


@torch.no_grad()
def bucketed_nearest_both_ways(
    a: torch.Tensor,
    b: torch.Tensor,
    a_lengths: torch.Tensor | None,
    b_lengths: torch.Tensor | None,
    memory_budget_bytes: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N, 1)`` index of the nearest point of ``b`` to each point of ``a: (B, N, 3)`` and
    ``(B, M, 1)`` the other way, as two :func:`bucketed_knn_indices` calls with ``k = 1`` but with
    each cloud encoded and sorted once (the Chamfer distance needs both)."""
    sorted_a, sorted_b, side = _sort_pair(a, b)
    a_to_b = _directional(sorted_a, sorted_b, 1, b_lengths, side, memory_budget_bytes)
    return a_to_b, _directional(sorted_b, sorted_a, 1, a_lengths, side, memory_budget_bytes)


@dataclass(frozen=True)
class _Sorted:
    """A batch of clouds ``(B, n, 3)`` (moved to the shared origin) with its sorted curve codes and
    the order that sorts it, both ``(B, n)``."""

    cloud: torch.Tensor
    codes: torch.Tensor
    order: torch.Tensor


def _sort_pair(query: torch.Tensor, points: torch.Tensor) -> tuple[_Sorted, _Sorted, torch.Tensor]:
    """Both clouds on one grid, moved so that each ``points`` cloud's first point is the origin
    (rounding of the expanded formula is then relative to the clouds' extent), and the ``(B,)``
    side of the grid."""
    origin = points[:, :1]
    query, points = query - origin, points - origin
    lo, scale = grid_frame(query, points)
    q, p = (_Sorted(cloud, *sort_codes(curve_codes(cloud, lo, scale))) for cloud in (query, points))
    return q, p, 2**BITS / scale.view(-1)


def _directional(
    q: _Sorted,
    p: _Sorted,
    k: int,
    point_lengths: torch.Tensor | None,
    side: torch.Tensor,
    memory_budget_bytes: int | None,
) -> torch.Tensor:
    """``(B, M, k)`` indices into ``p`` of the ``k`` nearest valid points of each query of ``q``."""
    (B, M, _), N = q.cloud.shape, p.cloud.shape[1]
    q_size = 2 ** min(round(math.log2(max(1.0, BUCKET_SIZE * M / N))), int(math.log2(BUCKET_SIZE)))
    p_buckets = _point_buckets(p.cloud, p.order, point_lengths)
    q_buckets = _query_buckets(q.cloud, q.order, q_size)
    nearby = _curve_neighbours(p.codes, q.codes, q_size, k)
    found = _search(q_buckets, p_buckets, nearby, k, side, memory_budget_bytes)  # (B * nq, q_size, k) slots
    flat_order = torch.nn.functional.pad(p.order, (0, p_buckets.slots - N)).view(-1)
    sorted_idx = flat_order[found.clamp_max(flat_order.numel() - 1)].view(B, -1, k)[:, :M]
    out = torch.empty_like(sorted_idx)
    return out.scatter_(1, q.order[..., None].expand(-1, -1, k), sorted_idx)


@dataclass(frozen=True)
class _Buckets:
    """Cut of a sorted cloud into buckets with boxes ``lo, hi: (B, nb, 3)``. ``rows`` are the
    distance rows: ``(B * nb, size, 5)`` for query buckets, ``(5, B * nb + 1, size)`` columns for point
    buckets (each row of the distance formula contiguous, for :func:`sq_distances`)."""

    rows: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    size: int

    @property
    def count(self) -> int:
        """Buckets per cloud, ``nb``."""
        return self.lo.shape[1]

    @property
    def slots(self) -> int:
        """Slots per cloud, ``nb * size`` (the cloud size rounded up)."""
        return self.count * self.size


def _point_buckets(points: torch.Tensor, order: torch.Tensor, lengths: torch.Tensor | None) -> _Buckets:
    """Buckets of ``[-2p, |p|², 1]`` rows, stored as ``(5, B * nb + 1, size)`` columns; padded points
    and filler slots get ``|p|² = inf``. A last, all-``inf`` bucket (index ``B * nb``) pads the
    candidate lists.
    """
    B, N, _ = points.shape
    count = -(-N // BUCKET_SIZE)
    order = torch.nn.functional.pad(order, (0, count * BUCKET_SIZE - N))
    invalid = torch.arange(order.shape[1], device=points.device) >= N
    if lengths is not None:
        invalid = invalid | (order >= lengths[:, None])
        points = torch.where(padding_mask(lengths, N)[..., None], points[:, :1], points)
    sorted_points = points.gather(1, order[..., None].expand(-1, -1, 3))
    rows = point_rows(sorted_points, invalid).view(-1, BUCKET_SIZE, 5)
    filler = rows.new_tensor([0.0, 0.0, 0.0, float("inf"), 1.0]).expand(1, BUCKET_SIZE, 5)
    boxes = sorted_points.view(B, count, BUCKET_SIZE, 3)
    columns = torch.cat([rows, filler]).permute(2, 0, 1).contiguous()
    return _Buckets(columns, boxes.amin(2), boxes.amax(2), BUCKET_SIZE)


def _query_buckets(query: torch.Tensor, order: torch.Tensor, size: int) -> _Buckets:
    """Buckets of ``[q, 1, |q|²]`` rows; the last bucket is filled up with copies of the last query."""
    B, M, _ = query.shape
    count = -(-M // size)
    order = torch.cat([order, order[:, -1:].expand(-1, count * size - M)], dim=1)
    sorted_query = query.gather(1, order[..., None].expand(-1, -1, 3))
    boxes = sorted_query.view(B, count, size, 3)
    return _Buckets(query_rows(sorted_query).view(-1, size, 5), boxes.amin(2), boxes.amax(2), size)


def _curve_neighbours(p_codes: torch.Tensor, q_codes: torch.Tensor, q_size: int, k: int) -> torch.Tensor:
    """``(B * nq, c)`` flat ids of the ``c`` point buckets around each query bucket on the curve.

    ``c`` buckets hold at least ``k`` slots; they give the first upper bound of the search.
    """
    B, N = p_codes.shape
    count = -(-N // BUCKET_SIZE)
    c = min(count, -(-k // BUCKET_SIZE) + 2)
    fill = -q_codes.shape[1] % q_size
    middle = torch.cat([q_codes, q_codes[:, -1:].expand(-1, fill)], 1)[:, q_size // 2 :: q_size].contiguous()
    starts = p_codes[:, ::BUCKET_SIZE].contiguous()
    at = torch.searchsorted(starts, middle, right=True) - 1
    first = (at - (c - 1) // 2).clamp(0, count - c)
    batch = torch.arange(B, device=p_codes.device)[:, None, None] * count
    return (first[..., None] + torch.arange(c, device=p_codes.device) + batch).view(-1, c)


def _search(
    q: _Buckets, p: _Buckets, nearby: torch.Tensor, k: int, side: torch.Tensor, memory_budget_bytes: int | None
) -> torch.Tensor:
    """``(B * nq, q.size, k)`` flat slots (``b * slots + position``) of the nearest points.

    Works through chunks of query buckets whose box bounds (against every point bucket of their
    cloud) and first-bound blocks fit the budget: whole clouds when at least one fits, else parts
    of one cloud.
    """
    B, nq, _ = q.lo.shape
    found = torch.empty(B * nq, q.size, k, dtype=torch.int64, device=q.rows.device)
    per_row = p.count * 3 * 4 * 3 + nearby.shape[1] * p.size * (q.size + 5) * 4
    rows_fit = query_chunk(1, per_row, 1, memory_budget_bytes, q.rows.device)
    p_lo, p_hi = p.lo.mT.contiguous(), p.hi.mT.contiguous()  # (B, 3, nb): bounds vectorise over buckets
    for clouds, part in _chunks(B, nq, rows_fit):
        rows = torch.arange(clouds.start, clouds.stop, device=q.rows.device)[:, None] * nq
        rows = (rows + torch.arange(part.start, part.stop, device=q.rows.device)).view(-1)
        bound = _first_bound(q.rows[rows], p.rows[:, nearby[rows]].flatten(2, 3), k).view(-1, part.stop - part.start)
        bound = bound * (1 + _BOUND_SLACK) + _BOUND_SLACK * 1e-2 * side[clouds, None] ** 2
        gap = _box_gap(q.lo[clouds, part], q.hi[clouds, part], p_lo[clouds], p_hi[clouds])  # (b, r, nb)
        reach = ~(gap > bound[..., None])  # a NaN bound (overflowing distances) prunes nothing
        candidates = _reachable_buckets(reach, clouds.start * p.count, p.rows.shape[1] - 1)
        found[rows] = _nearest_slots(q.rows[rows], p, candidates, k, memory_budget_bytes)
    return found


def _chunks(clouds: int, rows: int, rows_fit: int) -> Iterator[tuple[slice, slice]]:
    """``(clouds, rows of each)`` of the chunks: as many whole clouds as ``rows_fit`` rows allow, or
    runs of ``rows_fit`` rows of one cloud when a cloud does not fit."""
    if rows_fit >= rows:
        step = rows_fit // rows
        for first in range(0, clouds, step):
            yield slice(first, min(first + step, clouds)), slice(0, rows)
        return
    for cloud in range(clouds):
        for start in range(0, rows, rows_fit):
            yield slice(cloud, cloud + 1), slice(start, min(start + rows_fit, rows))


def _first_bound(q_rows: torch.Tensor, p_cols: torch.Tensor, k: int) -> torch.Tensor:
    """``(r,)`` largest, over each bucket's queries, ``k``-th smallest distance to ``p_cols: (5, r, c*S)``."""
    dist = sq_distances(q_rows, p_cols, out=q_rows.new_empty(q_rows.shape[:2] + p_cols.shape[-1:]))
    return kth_smallest_(dist, k).amax(-1)


def _box_gap(q_lo: torch.Tensor, q_hi: torch.Tensor, p_lo: torch.Tensor, p_hi: torch.Tensor) -> torch.Tensor:
    """``(b, nq, nb)`` squared distance between the boxes ``q: (b, nq, 3)`` and ``p: (b, 3, nb)``."""
    gap = torch.maximum(q_lo[..., None] - p_hi[:, None], p_lo[:, None] - q_hi[..., None])  # (b, nq, 3, nb)
    return gap.clamp_min_(0).square_().sum(2)


def _reachable_buckets(reach: torch.Tensor, offset: int, filler: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reachable point buckets of each query bucket, from ``reach: (b, nq, nb)`` bool.

    Returns ``(b * nq, C)`` flat bucket ids (``offset`` + cloud * nb + bucket; rows with fewer than
    ``C`` are filled with ``filler``) and the ``(b * nq,)`` counts.
    """
    b, nq, nb = reach.shape
    reach = reach.view(b * nq, nb)
    counts = reach.sum(1)
    pairs = reach.nonzero()
    column = torch.arange(pairs.shape[0], device=reach.device) - (counts.cumsum(0) - counts)[pairs[:, 0]]
    table = torch.full((b * nq, int(counts.max())), filler, device=reach.device)
    cloud = torch.div(pairs[:, 0], nq, rounding_mode="floor")
    table[pairs[:, 0], column] = pairs[:, 1] + cloud * nb + offset
    return table, counts


def _nearest_slots(
    q_rows: torch.Tensor,
    p: _Buckets,
    candidates: tuple[torch.Tensor, torch.Tensor],
    k: int,
    memory_budget_bytes: int | None,
) -> torch.Tensor:
    """``(r, q.size, k)`` flat slots of the ``k`` nearest points among each row's candidate buckets.

    Rows are taken in order of their number of candidate buckets, in groups whose gathered
    candidates and distance block fit the budget, so a few rows with many candidates do not pad the
    others. The blocks are written into two preallocated buffers (fresh large allocations cost
    page faults that would double the time of the distance computation).
    """
    table, counts = candidates
    r, q_size, _ = q_rows.shape
    per_bucket = p.size * (q_size + 5)  # distance entries plus gathered rows, per candidate bucket
    limit = max(
        int(counts.max()) * per_bucket, query_chunk(1, 1, q_rows.element_size(), memory_budget_bytes, q_rows.device)
    )
    storage = q_rows.new_empty(limit)
    out = torch.empty(r, q_size, k, dtype=torch.int64, device=q_rows.device)
    order = counts.argsort()
    sorted_counts = counts[order].tolist()
    start = 0
    while start < r:
        stop = _group_end(sorted_counts, start, limit // per_bucket)
        part, width = order[start:stop], sorted_counts[stop - 1]
        ids = table[part, :width].reshape(-1)
        n_rows = ids.numel() * p.size * 5
        gathered = torch.index_select(p.rows, 1, ids, out=storage[:n_rows].view(5, -1, p.size))
        block = storage[n_rows : n_rows + len(part) * q_size * width * p.size].view(len(part), q_size, -1)
        dist = sq_distances(q_rows[part], gathered.view(5, len(part), -1), out=block)
        bucket, slot = _smallest(dist.view(len(part), q_size, width, p.size), k)
        out[part] = table[part].gather(1, bucket.flatten(1)).view_as(bucket) * p.size + slot
        start = stop
    return out


def _group_end(sorted_counts: list[int], start: int, capacity: int) -> int:
    """End of the group of rows from ``start`` whose rows x largest count fits ``capacity`` buckets."""
    stop = min(len(sorted_counts), start + max(1, capacity // max(1, sorted_counts[start])))
    while stop > start + 1 and (stop - start) * sorted_counts[stop - 1] > capacity:
        stop = start + max(1, (stop - start) // 2)
    return stop


def _smallest(dist: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(bucket column, slot) of the ``k`` smallest entries over the last two axes of ``dist: (r, q, C, S)``.

    For ``k > 1`` :func:`act3d.ops._select.smallest_k_` over the ``C * S`` candidates of each query.
    For ``k = 1`` a vectorised minimum over the buckets first, then the index of the minimum over
    the ``S`` slots and over the ``C`` entries of the winning slot (finding an index is not
    vectorised on CPU, so it runs over short rows; ``min(dim).indices`` is ~1.6x faster than ``argmin``).
    """
    if k > 1:
        block = min(selection_block(dist.shape[2] * dist.shape[3], k), dist.shape[3])  # divides C * S
        pos = smallest_k_(dist.flatten(2), k, block)
        return torch.div(pos, dist.shape[-1], rounding_mode="floor"), pos % dist.shape[-1]
    slot = dist.amin(2).min(-1, keepdim=True).indices  # (r, q, 1)
    column = dist.gather(3, slot[..., None, :].expand(-1, -1, dist.shape[2], 1)).squeeze(-1)
    return column.min(-1, keepdim=True).indices, slot
