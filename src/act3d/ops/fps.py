"""Farthest point sampling."""

from __future__ import annotations

from typing import Literal

import torch

from act3d.errors import OpError
from act3d.ops._checks import check_cloud, check_count, compute_dtype, padding_mask


def farthest_point_sample(
    points: torch.Tensor,
    n: int,
    lengths: torch.Tensor | None = None,
    start: Literal["random", "first"] = "first",
    generator: torch.Generator | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Iterative farthest point sampling (FPS) of ``n`` points per cloud.

    The first pick is point 0 (``start="first"``, deterministic) or a uniformly random valid point
    (``start="random"``, drawn from ``generator`` on the generator's device). Each next pick is the
    not-yet-picked point whose squared euclidean distance to the picked set is largest; ties go to
    the lowest index. Picked points are never picked again, so the result has ``n`` distinct indices
    even for clouds with duplicate points, and ``n == lengths[b]`` returns a permutation of the cloud.
    Padded points (index ``>= lengths[b]``) are never picked.

    The loop runs over the ``n`` picks only; each step is a batched, in-place update of a ``(B, N)``
    min-distance array with no host synchronisation. Distances are computed in float32 (float64 for
    float64 input). Memory: ``O(B * N)``.

    Args:
        points: ``(B, N, 3)`` float16, bfloat16, float32 or float64 padded clouds.
        n: number of points to pick per cloud, ``1 <= n <= min(lengths)``.
        lengths: optional ``(B,)`` int64 number of valid points per cloud (default: all ``N``).
        start: how the first point is chosen.
        generator: random generator for ``start="random"``.
        check_finite: reject NaN/Inf in ``points`` (one reduction and host sync; skip in hot loops).

    Returns:
        ``(B, n)`` int64 indices into ``N``, in pick order.

    Raises:
        OpError: bad shape or dtype, empty cloud, NaN/Inf, ``n`` larger than a cloud, unknown ``start``.
    """
    lengths = check_cloud("points", points, lengths, check_finite)
    check_count("n", n, points, lengths)
    if start not in ("first", "random"):
        raise OpError(f"start must be 'first' or 'random', got {start!r}")
    B, N, _ = points.shape
    coords = points.to(compute_dtype(points)).permute(2, 0, 1).contiguous()  # (3, B, N): one row per axis
    min_dist = coords.new_full((B, N), float("inf"))
    if lengths is not None:
        min_dist.masked_fill_(padding_mask(lengths, N), float("-inf"))
    picked = torch.empty(n, B, 1, dtype=torch.int64, device=points.device)
    picked[0, :, 0] = _first_pick(points, lengths, start, generator)
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
