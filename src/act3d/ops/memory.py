"""The memory budget of the chunked ops (:func:`knn`, :func:`ball_query`, :func:`group`,
:func:`chamfer_distance`).

Those ops never materialise a ``B x M x N`` distance matrix at once: they walk over the queries in
chunks so that the temporaries of one ``B x chunk x N`` block of distances stay within the budget
(on CPU also within :data:`CPU_BLOCK_BYTES`, for speed). The budget is, in
order of precedence: the op's ``memory_budget_bytes`` argument, the value given to
:func:`set_memory_budget`, the environment variable ``ACT3D_OPS_MEMORY_BUDGET`` (bytes, read at
each call), and :data:`DEFAULT_MEMORY_BUDGET` (256 MiB).
"""

from __future__ import annotations

import os

import torch

from act3d.errors import ConfigError, OpError

DEFAULT_MEMORY_BUDGET = 256 * 2**20
ENV_VAR = "ACT3D_OPS_MEMORY_BUDGET"
CPU_BLOCK_BYTES = 16 * 2**20

_budget: int | None = None


def set_memory_budget(budget_bytes: int | None) -> None:
    """Sets the process-wide budget in bytes for one block of distances; ``None`` restores the default."""
    global _budget
    if budget_bytes is not None and (
        isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes < 1
    ):
        raise OpError(f"the memory budget must be a positive int number of bytes, got {budget_bytes!r}")
    _budget = budget_bytes


def get_memory_budget() -> int:
    """The budget in bytes that an op called without ``memory_budget_bytes`` uses."""
    if _budget is not None:
        return _budget
    value = os.environ.get(ENV_VAR)
    if value is None:
        return DEFAULT_MEMORY_BUDGET
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigError(f"{ENV_VAR} must be a positive integer number of bytes, got {value!r}")
    return int(value)


def query_chunk(batch: int, num_points: int, itemsize: int, budget_bytes: int | None, device: torch.device) -> int:
    """How many queries fit in one ``batch x chunk x num_points`` block of ``itemsize``-byte entries.

    At least 1: a single query row (``batch * num_points * itemsize`` bytes) is the smallest block.
    On CPU the block is also kept under :data:`CPU_BLOCK_BYTES`: larger blocks fall out of cache
    and run slower, not faster.
    """
    budget = get_memory_budget() if budget_bytes is None else budget_bytes
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise OpError(f"memory_budget_bytes must be a positive int, got {budget!r}")
    if device.type == "cpu":
        budget = min(budget, CPU_BLOCK_BYTES)
    return max(1, budget // (batch * num_points * itemsize))
