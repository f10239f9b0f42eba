"""Chunked blocks of squared distances, shared by :func:`knn` and :func:`ball_query`."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from act3d.ops._checks import padding_mask
from act3d.ops.memory import query_chunk

CPU_CHUNK_ROWS = 32
"""Most queries per CPU block: MKL's ``bmm`` with an inner size of 5 runs at ~0.26-0.33 ns per entry
for 4-32 rows per batch and at ~0.6-1.1 ns from 64 rows on (measured B=32, N=1024-8192, 1 thread)."""
CPU_BROADCAST_MAX_ROWS = 2
"""Up to this many rows per batch :func:`sq_distances` uses broadcast passes on CPU instead of ``bmm``."""


@torch.no_grad()
def distance_blocks(
    query: torch.Tensor,
    points: torch.Tensor,
    point_lengths: torch.Tensor | None,
    memory_budget_bytes: int | None,
    bytes_per_entry: int,
    multiple: int = 1,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yields ``(rows, block)`` with ``block[b, i, j] = ||q_i - p_j||²`` for the queries ``rows``.

    Each block is the product of ``[q, 1, ||q||²]`` with ``[-2p, ||p||², 1]`` (:func:`sq_distances`),
    that is ``||q||² + ||p||² - 2 q·p``, after moving each cloud's first point to the origin (which bounds the
    rounding error by the cloud's diameter rather than its distance to the origin); it can be
    slightly negative. Padded points, and the extra columns that round ``N`` up to a ``multiple``,
    are ``+inf``. A chunk holds as many queries as fit ``memory_budget_bytes`` at ``bytes_per_entry``
    bytes per ``(b, i, j)`` entry (at least one query; see :func:`act3d.ops.memory.query_chunk`). The
    block's storage is reused by the next chunk: reduce it before asking for the next one. Runs
    without autograd; inputs must be validated.

    Args:
        query: ``(B, M, 3)`` float32 or float64.
        points: ``(B, N, 3)`` same dtype.
        point_lengths: optional ``(B,)`` int64 valid points per cloud.
        memory_budget_bytes: budget of one chunk's temporaries (default: the module setting).
        bytes_per_entry: bytes the caller allocates per entry of a block, the block included.
        multiple: the number of columns of a block is ``N`` rounded up to a multiple of this.
    """
    (B, M, _), N = query.shape, points.shape[1]
    origin = points[:, :1]
    query, points = query - origin, points - origin
    invalid = None if point_lengths is None else padding_mask(point_lengths, N)
    rhs = point_rows(points, invalid)
    rhs = torch.nn.functional.pad(rhs, (0, 0, 0, -N % multiple)).permute(2, 0, 1).contiguous()  # (5, B, N')
    rhs[3, :, N:] = float("inf")
    lhs = query_rows(query)  # (B, M, 5)
    chunk = min(M, query_chunk(B, rhs.shape[-1], bytes_per_entry, memory_budget_bytes, query.device))
    if query.device.type == "cpu":
        chunk = min(chunk, CPU_CHUNK_ROWS)
    storage = torch.empty(B * chunk * rhs.shape[-1], dtype=query.dtype, device=query.device)
    for start in range(0, M, chunk):
        rows = slice(start, min(start + chunk, M))
        block = storage[: B * (rows.stop - start) * rhs.shape[-1]].view(B, -1, rhs.shape[-1])
        yield rows, sq_distances(lhs[:, rows], rhs, out=block)


def sq_distances(lhs: torch.Tensor, rhs: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[b, i, j] = sum_f lhs[b, i, f] * rhs[f, b, j]``, that is ``||q_i - p_j||²`` for
    ``lhs: (b, m, 5)`` :func:`query_rows` and ``rhs: (5, b, n)`` :func:`point_rows` laid out as columns.

    One ``bmm``, except on CPU for ``m <= 2`` rows per batch (sparse query buckets), where ``bmm``'s
    inner size of 5 runs at ~1-1.25 ns per entry: there four broadcast passes, vectorised along ``n``
    (``||q||² + ||p||²``, then ``+= q_a * (-2 p_a)`` per axis), ~0.6 ns per entry.
    """
    if out.device.type != "cpu" or lhs.shape[1] > CPU_BROADCAST_MAX_ROWS:
        return torch.bmm(lhs, rhs.permute(1, 0, 2), out=out)
    torch.add(lhs[..., 4:5], rhs[3, :, None], out=out)
    for axis in range(3):
        out.addcmul_(lhs[..., axis : axis + 1], rhs[axis, :, None])
    return out


def query_rows(query: torch.Tensor) -> torch.Tensor:
    """``(..., 5)`` rows ``[q, 1, ||q||²]`` of ``query: (..., 3)``: their product with :func:`point_rows`
    is ``||q - p||²``."""
    return torch.cat([query, torch.ones_like(query[..., :1]), query.square().sum(-1, keepdim=True)], dim=-1)


def point_rows(points: torch.Tensor, invalid: torch.Tensor | None = None) -> torch.Tensor:
    """``(..., 5)`` rows ``[-2p, ||p||², 1]`` of ``points: (..., 3)``; ``||p||² = inf`` where the
    optional ``invalid: (...)`` mask is set, so those points are never the nearest."""
    sq_norm = points.square().sum(-1, keepdim=True)
    if invalid is not None:
        sq_norm.masked_fill_(invalid[..., None], float("inf"))
    return torch.cat([-2 * points, sq_norm, torch.ones_like(sq_norm)], dim=-1)
