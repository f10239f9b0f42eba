"""Chunked blocks of squared distances, shared by :func:`knn` and :func:`ball_query`."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from act3d.ops._checks import padding_mask
from act3d.ops.memory import query_chunk


@torch.no_grad()
def distance_blocks(
    query: torch.Tensor,
    points: torch.Tensor,
    point_lengths: torch.Tensor | None,
    memory_budget_bytes: int | None,
    bytes_per_entry: int,
    multiple: int = 1,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yields ``(rows, block)``: ``block[b, i, j] = ||p_j||² - 2 q_i·p_j`` for the queries ``rows``.

    Adding ``||q_i||²`` gives the squared distance; it is left out because it does not change the
    ranking along a row. Each cloud's first point is moved to the origin first, which bounds the
    rounding error of the expanded formula by the cloud's diameter instead of its distance to the
    origin. Padded points (and the extra columns that round ``N`` up to a ``multiple``) are ``+inf``.
    Chunks hold as many queries as fit ``memory_budget_bytes`` at ``bytes_per_entry`` bytes per
    ``(b, i, j)`` entry (at least one query). Runs without autograd; inputs must be validated.

    Args:
        query: ``(B, M, 3)`` float32 or float64.
        points: ``(B, N, 3)`` same dtype.
        point_lengths: optional ``(B,)`` int64 valid points per cloud.
        memory_budget_bytes: budget of one chunk's temporaries (default: the module setting).
        bytes_per_entry: bytes the caller allocates per entry of a block, the block included.
        multiple: the number of columns of a block is ``N`` rounded up to a multiple of this.
    """
    B, N, _ = points.shape
    origin = points[:, :1]
    query, points = query - origin, points - origin
    sq_norm = points.square().sum(-1)
    if point_lengths is not None:
        sq_norm.masked_fill_(padding_mask(point_lengths, N), float("inf"))
    extra = -N % multiple
    points_t = torch.nn.functional.pad(points, (0, 0, 0, extra)).mT
    sq_norm = torch.nn.functional.pad(sq_norm, (0, extra), value=float("inf"))[:, None]
    chunk = query_chunk(B, N + extra, bytes_per_entry, memory_budget_bytes)
    for start in range(0, query.shape[1], chunk):
        rows = slice(start, start + chunk)
        yield rows, torch.baddbmm(sq_norm, query[:, rows], points_t, alpha=-2)
