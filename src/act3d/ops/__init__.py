"""Point-cloud ops in pure PyTorch (CPU, CUDA, MPS): sampling, neighbours, grouping, Chamfer.

Conventions: clouds are ``(B, N, 3)`` float tensors; padded batches of clouds of different sizes
carry ``lengths: (B,) int64``; distances are computed in float32 (float64 for float64 input); bad
input raises :class:`act3d.errors.OpError`. See ``docs/ops.md``.
"""

from act3d.ops.ball_query import ball_query
from act3d.ops.chamfer import chamfer_distance
from act3d.ops.fps import farthest_point_sample
from act3d.ops.gather import gather_points
from act3d.ops.group import group
from act3d.ops.knn import knn
from act3d.ops.memory import DEFAULT_MEMORY_BUDGET, get_memory_budget, set_memory_budget
from act3d.ops.normalize import normalize_unit_sphere

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "ball_query",
    "chamfer_distance",
    "farthest_point_sample",
    "gather_points",
    "get_memory_budget",
    "group",
    "knn",
    "normalize_unit_sphere",
    "set_memory_budget",
]
