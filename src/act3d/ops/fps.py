"""Farthest point sampling."""

from __future__ import annotations

from typing import Literal

import torch

from act3d.errors import OpError
from act3d.ops._checks import check_cloud, check_count, check_method, compute_dtype, padding_mask
from act3d.ops._curve import curve_order

NEAR_ORIGIN = 1e-3
"""Squared norm at or under which the official CUDA FPS kernel skips a point (``skip_near_origin``)."""
BUCKET_SIZE = 64
"""Points per bucket of the bucketed FPS (32 and 64 measured equal at N=8192, 16 and 128 slower)."""
BUCKETS_FROM = 6144
"""``method="auto"`` uses the bucketed FPS on CPU from this cloud size on.

Measured crossover (B=32, n=N/16, 1 thread): 4096 points dense 79 ms vs buckets 88 ms, 8192 points
363 ms vs 216 ms.
"""


def farthest_point_sample(
    points: torch.Tensor,
    n: int,
    lengths: torch.Tensor | None = None,
    start: Literal["random", "first"] = "first",
    generator: torch.Generator | None = None,
    check_finite: bool = True,
    method: Literal["auto", "dense", "buckets"] = "auto",
    skip_near_origin: bool = False,
) -> torch.Tensor:
    """Iterative farthest point sampling (FPS) of ``n`` points per cloud.

    The first pick is point 0 (``start="first"``, deterministic) or a uniformly random valid point
    (``start="random"``, drawn from ``generator`` on the generator's device). Each next pick is the
    not-yet-picked point whose squared euclidean distance to the picked set is largest; ties go to
    the lowest index. Picked points are never picked again, so the result has ``n`` distinct indices
    even for clouds with duplicate points, and ``n == lengths[b]`` returns a permutation of the cloud.
    Padded points (index ``>= lengths[b]``) are never picked.

    Two exact implementations, which return the same indices. ``"dense"``: each pick is a batched,
    in-place update of a ``(B, N)`` min-distance array with no host synchronisation (best on GPUs
    and for small clouds). ``"buckets"``: the points are sorted along a Hilbert curve into buckets of
    :data:`BUCKET_SIZE` with bounding boxes, and a pick only updates the buckets whose box is closer
    to it than their current largest min-distance (the others cannot change); one host sync per
    pick. ``"auto"`` takes the buckets on CPU from :data:`BUCKETS_FROM` points on. Distances are
    computed in float32 (float64 for float64 input). Memory: ``O(B * N)``.

    ``skip_near_origin`` reproduces the official CUDA kernel (pointnet2_ops), which never picks a
    point with ``|p|² <= 1e-3`` after the first pick (the first pick is taken as above, near the
    origin or not). Use it to match the official grouping when evaluating an official checkpoint on
    clouds that hold points at the origin; off by default. If a cloud has fewer than ``n`` such
    points, the extra picks repeat index 0 (the official kernel also repeats a picked point).

    Args:
        points: ``(B, N, 3)`` float16, bfloat16, float32 or float64 padded clouds.
        n: number of points to pick per cloud, ``1 <= n <= min(lengths)``.
        lengths: optional ``(B,)`` int64 number of valid points per cloud (default: all ``N``).
        start: how the first point is chosen.
        generator: random generator for ``start="random"``.
        check_finite: reject NaN/Inf in ``points`` (one reduction and host sync; skip in hot loops).
        method: ``"auto"``, ``"dense"`` or ``"buckets"`` (see above).
        skip_near_origin: never pick points with ``|p|² <= 1e-3`` after the first (see above).

    Returns:
        ``(B, n)`` int64 indices into ``N``, in pick order.

    Raises:
        OpError: bad shape or dtype, empty cloud, NaN/Inf, ``n`` larger than a cloud, unknown
            ``start`` or ``method``.
    """
    lengths = check_cloud("points", points, lengths, check_finite)
    check_count("n", n, points, lengths)
    if start not in ("first", "random"):
        raise OpError(f"start must be 'first' or 'random', got {start!r}")
    check_method(method)
    B, N, _ = points.shape
    coords = points.to(compute_dtype(points)).permute(2, 0, 1).contiguous()  # (3, B, N): one row per axis
    first = _first_pick(points, lengths, start, generator)
    excluded = padding_mask(lengths, N) if lengths is not None else None
    if skip_near_origin:
        near = coords.square().sum(0) <= NEAR_ORIGIN
        excluded = near if excluded is None else excluded | near
    if method == "buckets" or (method == "auto" and points.device.type == "cpu" and N >= BUCKETS_FROM):
        return _bucketed_fps(coords, first, n, lengths, excluded)
    min_dist = coords.new_full((B, N), float("inf"))
    if excluded is not None:
        min_dist.masked_fill_(excluded, float("-inf"))
    picked = torch.empty(n, B, 1, dtype=torch.int64, device=points.device)
    picked[0, :, 0] = first
    # float32 holds every index exactly up to 2**24; larger clouds use float64 for the index trick.
    index_dtype = coords.dtype if N <= 2**24 else torch.float64
    reversed_index = torch.arange(N, 0, -1, dtype=index_dtype, device=points.device)
    dist, diff = torch.empty_like(min_dist), torch.empty_like(min_dist)
    mask, row_max = torch.empty_like(min_dist, dtype=index_dtype), coords.new_empty(B, 1)
    for i in range(1, n):
        _update_min_dist(coords, picked[i - 1], min_dist, dist, diff)
        _first_argmax(min_dist, reversed_index, mask, row_max, out=picked[i])
    return picked[..., 0].T.contiguous()


def _first_pick(
    points: torch.Tensor, lengths: torch.Tensor | None, start: str, generator: torch.Generator | None
) -> torch.Tensor:
    """``(B,)`` index of the first pick: 0, or uniform in ``[0, lengths[b])``."""
    B, N, _ = points.shape
    if start == "first":
        return torch.zeros(B, dtype=torch.int64, device=points.device)
    device = points.device if generator is None else generator.device
    u = torch.rand(B, generator=generator, device=device, dtype=torch.float64).to(points.device)
    sizes = torch.full((B,), N, device=points.device) if lengths is None else lengths
    return (u * sizes).long()


def _update_min_dist(
    coords: torch.Tensor, last: torch.Tensor, min_dist: torch.Tensor, dist: torch.Tensor, diff: torch.Tensor
) -> None:
    """``min_dist = min(min_dist, |p - p[last]|²)`` in place for ``last: (B, 1)``, then sets ``last`` to -inf.

    Every pass is a contiguous ``(B, N)`` kernel on one coordinate axis, with preallocated outputs.
    """
    centre = coords.gather(2, last.expand(3, -1, -1))  # (3, B, 1)
    torch.sub(coords[0], centre[0], out=dist).square_()
    for axis in (1, 2):
        torch.sub(coords[axis], centre[axis], out=diff)
        dist.addcmul_(diff, diff)
    torch.minimum(min_dist, dist, out=min_dist)
    min_dist.scatter_(1, last, float("-inf"))


def _first_argmax(
    values: torch.Tensor, reversed_index: torch.Tensor, mask: torch.Tensor, row_max: torch.Tensor, out: torch.Tensor
) -> None:
    """``out = values.argmax(1, keepdim=True)`` (lowest index among ties) for a ``(B, N)`` ``values``.

    On CPU ``argmax``/``max(dim)`` are not vectorised and cost ~3x a plain reduction, so this uses
    three vectorised passes instead: the row maximum, a 1/0 mask of the maximal entries weighted by
    ``N - j``, and the maximum of that weight, which is ``N - (first j)``.
    """
    torch.amax(values, 1, keepdim=True, out=row_max)
    torch.eq(values, row_max, out=mask).mul_(reversed_index)
    out.copy_(mask.amax(1, keepdim=True).neg_().add_(values.shape[1]))


def _bucketed_fps(
    coords: torch.Tensor, first: torch.Tensor, n: int, lengths: torch.Tensor | None, excluded: torch.Tensor | None
) -> torch.Tensor:
    """FPS of ``coords: (3, B, N)`` from ``first: (B,)`` that only updates the buckets a pick can reach.

    A table ``(4, B * nb, S)`` holds each bucket's coordinates and min-distances; padded points (and
    the slots that round ``N`` up to ``nb * S``) sit on point 0 with min-distance ``-inf``, and so
    do the points of ``excluded: (B, N)`` bool (padding, or near the origin), at their own place. A bucket
    with box lower bound ``lb`` to the new pick and largest min-distance ``top`` can only change if
    ``lb <= top``; those buckets are gathered, updated and written back. Indices inside the loop are
    global (``b * N + i``) so every lookup is one ``index_select``. Returns ``(B, n)`` int64.
    """
    _, B, N = coords.shape
    if lengths is not None:
        coords = torch.where(padding_mask(lengths, N), coords[:, :, :1], coords)
    num_buckets = -(-N // BUCKET_SIZE)
    order = torch.nn.functional.pad(curve_order(coords.permute(1, 2, 0)), (0, num_buckets * BUCKET_SIZE - N), value=N)
    valid = order < (N if lengths is None else lengths[:, None])
    if excluded is not None:
        valid &= ~excluded.gather(1, order.clamp_max(N - 1))
    table = torch.cat(
        [coords.gather(2, order.clamp_max(N - 1).expand(3, -1, -1)), coords.new_empty(1, B, order.shape[1])]
    )
    table[3] = torch.where(valid, float("inf"), float("-inf"))
    table = table.view(4, B * num_buckets, BUCKET_SIZE)
    min_dist = table[3]
    lo = table[:3].amin(2).view(3, B, num_buckets)
    hi = table[:3].amax(2).view(3, B, num_buckets)
    offset = torch.arange(B, device=coords.device)[:, None] * N
    global_order = torch.where(order < N, order + offset, B * N).view(B * num_buckets, BUCKET_SIZE)
    slot_of = torch.empty(B * N, dtype=torch.int64, device=coords.device)  # global index -> table slot
    real = (global_order < B * N).view(-1)
    slot_of[global_order.view(-1)[real]] = real.nonzero().view(-1)
    flat_coords = coords.reshape(3, B * N)
    top = coords.new_full((B * num_buckets,), float("inf"))
    picked = torch.empty(n, B, dtype=torch.int64, device=coords.device)
    picked[0] = first + offset[:, 0]
    for i in range(1, n):
        centre = flat_coords.index_select(1, picked[i - 1]).unsqueeze(-1)  # (3, B, 1)
        min_dist.view(-1).index_fill_(0, slot_of.index_select(0, picked[i - 1]), float("-inf"))
        bound = torch.maximum(lo - centre, centre - hi).clamp_min_(0).square_().sum(0)  # (B, nb)
        rows = (bound.view(-1) <= top).nonzero().view(-1)
        block = table.index_select(1, rows)  # (4, A, S)
        owner = torch.div(rows, num_buckets, rounding_mode="floor")
        diff = block[:3].sub_(centre.squeeze(-1).index_select(1, owner).unsqueeze(-1)).square_()
        dist = torch.minimum(block[3], diff[0].add_(diff[1]).add_(diff[2]))
        min_dist.index_copy_(0, rows, dist)
        top.index_copy_(0, rows, dist.amax(1))
        picked[i] = _bucketed_argmax(top.view(B, num_buckets), min_dist, global_order)
    return (picked - offset.T).T.contiguous()


def _bucketed_argmax(top: torch.Tensor, min_dist: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``(B,)`` index in ``order`` of the largest min-distance per cloud, lowest index among ties.

    ``top: (B, nb)`` bucket maxima, ``min_dist: (B * nb, S)``, ``order: (B * nb, S)`` index of
    each slot, increasing with the cloud (larger than any real index for filler slots). When one
    bucket per cloud holds the maximum (the usual case) only those buckets are searched; ties
    across buckets search the whole table.
    """
    B = top.shape[0]
    best = top.amax(1, keepdim=True)
    holders = top == best
    if int(holders.sum()) == B:
        rows = holders.view(-1).nonzero().view(-1)
        values, index = min_dist.index_select(0, rows), order.index_select(0, rows)
    else:
        values, index = min_dist.view(B, -1), order.view(B, -1)
    return torch.where(values == best, index, torch.iinfo(torch.int64).max).amin(1)
