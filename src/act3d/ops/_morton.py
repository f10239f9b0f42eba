"""Z-order (Morton) sorting of point clouds, the spatial index behind the bucketed ops."""

from __future__ import annotations

import torch

BITS = 7  # per axis: a 128³ grid, codes of 21 bits


def morton_codes(coords: torch.Tensor, lo: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` int64 Morton codes of ``coords: (3, B, N)`` on a ``2**BITS`` grid per axis.

    The grid cell of a point is ``floor((coords - lo) * scale)`` clamped to the grid, with
    ``lo: (3, B, 1)`` and ``scale: (1, B, 1)``; the three cell indices are bit-interleaved.
    """
    cells = ((coords - lo) * scale).clamp_(0, 2**BITS - 1).long()
    code = torch.zeros(coords.shape[1:], dtype=torch.int64, device=coords.device)
    for axis in range(3):
        v = cells[axis]
        v = (v | (v << 8)) & 0x0000F00F
        v = (v | (v << 4)) & 0x000C30C3
        v = (v | (v << 2)) & 0x00249249
        code |= v << axis
    return code


def morton_order(coords: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` int64 permutation sorting each cloud of ``coords: (3, B, N)`` along a Z-order curve.

    The grid spans each cloud's bounding box (a cube of its largest side). Points in the same cell
    keep their index order (stable sort). One flat sort for the whole batch: the batch index is put
    above the 21 code bits.
    """
    _, B, N = coords.shape
    lo = coords.amin(2, keepdim=True)
    side = (coords.amax(2, keepdim=True) - lo).amax(0, keepdim=True)
    scale = 2**BITS / side.clamp_min(torch.finfo(coords.dtype).tiny)
    batch = torch.arange(B, device=coords.device)[:, None]
    keys = morton_codes(coords, lo, scale) | (batch << 3 * BITS)
    return keys.view(-1).sort(stable=True).indices.view(B, N) - batch * N
