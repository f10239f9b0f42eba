"""Hilbert-curve sorting of point clouds, the spatial index behind the bucketed ops.

Consecutive points along a Hilbert curve stay close in space (the curve never jumps, unlike a
Z-order curve), so cutting the sorted cloud into runs of equal size gives compact buckets with
tight bounding boxes. Measured on 8192 uniform points per cloud, buckets of 32 and the
nearest-neighbour bound of ``knn``: a query bucket has to visit 19 point buckets on average with
Hilbert buckets, 39 with Z-order buckets (16 with a median-split kd-tree, which costs 8 sorts).
"""

from __future__ import annotations

import torch

BITS = 7  # per axis: a 128³ grid, codes of 21 bits


def grid_frame(*clouds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, scale)``: ``(B, 1, 3)`` corner and ``(B, 1, 1)`` cells per unit of the joint bounding
    cube of ``clouds``, each ``(B, N_i, 3)``; ``scale`` is 0 where the cube is a point (or too small
    for its inverse to be finite).
    """
    lo = torch.stack([c.amin(1, keepdim=True) for c in clouds]).amin(0)
    hi = torch.stack([c.amax(1, keepdim=True) for c in clouds]).amax(0)
    side = (hi - lo).amax(-1, keepdim=True)
    return lo, torch.nan_to_num(2**BITS / side, posinf=0.0)  # a cloud of one position: a single cell


def hilbert_codes(cells: torch.Tensor, bits: int = BITS) -> torch.Tensor:
    """Hilbert index of integer cells ``(3, ...)`` in ``[0, 2**bits)``, ``bits <= 8``: ``(...)`` int32.

    Skilling's transform ("Programming the Hilbert curve", 2004), written without branches so that
    every step is one vectorised integer op over all points (in uint8: 6x faster than int32), then
    the bits are interleaved.
    """
    cells = cells.to(torch.uint8)
    x = [cells[0].clone(), cells[1].clone(), cells[2].clone()]
    for level in range(bits - 1, 0, -1):
        low = (1 << level) - 1
        for i in range(3):
            bit_set = ((x[i] >> level) & 1).neg_()  # all ones where the bit is set
            if i == 0:
                x[0] ^= bit_set & low
                continue
            swap = (x[0] ^ x[i]) & low & ~bit_set
            x[0] ^= (bit_set & low) | swap
            x[i] ^= swap
    x[1] ^= x[0]
    x[2] ^= x[1]
    flip = torch.zeros_like(x[0])
    for level in range(bits - 1, 0, -1):
        flip ^= ((x[2] >> level) & 1).neg_() & ((1 << level) - 1)
    x = [(v ^ flip).int() for v in x]
    return (_spread_bits(x[0]) << 2) | (_spread_bits(x[1]) << 1) | _spread_bits(x[2])


def _spread_bits(v: torch.Tensor) -> torch.Tensor:
    """Moves bit ``j`` of ``v`` (``j < 10``) to bit ``3 j``."""
    v = (v | (v << 8)) & 0x0000F00F
    v = (v | (v << 4)) & 0x000C30C3
    return (v | (v << 2)) & 0x00249249


def curve_codes(points: torch.Tensor, lo: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` int64 Hilbert codes of ``points: (B, N, 3)`` on the grid ``(lo, scale)``."""
    cells = ((points - lo) * scale).clamp_(0, 2**BITS - 1).to(torch.uint8)
    return hilbert_codes(cells.permute(2, 0, 1)).long()


def sort_codes(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sorted codes, order)``, both ``(B, N)``, of each row of ``codes: (B, N)``, ties in index order.

    One flat stable sort for the whole batch: the batch index is put above the code bits.
    """
    B, N = codes.shape
    batch = torch.arange(B, device=codes.device)[:, None]
    keys = codes | (batch << 3 * BITS)
    if B <= 2 ** (31 - 3 * BITS):
        keys = keys.int()  # int32 keys sort in half the time
    keys, order = keys.view(-1).sort(stable=True)
    return keys.view(B, N).long() & (2 ** (3 * BITS) - 1), order.view(B, N) - batch * N


def curve_order(points: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` int64 permutation sorting each cloud of ``points: (B, N, 3)`` along a Hilbert curve
    over its bounding cube; points in the same cell keep their index order.
    """
    return sort_codes(curve_codes(points, *grid_frame(points)))[1]
