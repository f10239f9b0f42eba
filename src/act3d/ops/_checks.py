"""Input validation shared by the point ops: every failure raises :class:`act3d.errors.OpError`."""

from __future__ import annotations

import torch

from act3d.errors import OpError

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_cloud(
    name: str, points: torch.Tensor, lengths: torch.Tensor | None, check_finite: bool
) -> torch.Tensor | None:
    """Validates a padded batch of clouds ``(B, N, 3)`` and its optional ``lengths: (B,)``.

    Returns ``lengths`` as int64 on ``points.device`` (``None`` stays ``None``: every cloud is full).
    Raises OpError for a wrong shape or dtype, an empty batch or cloud, a length outside ``[1, N]``
    and, when ``check_finite``, any NaN or Inf anywhere in ``points`` (padding included).
    """
    if not isinstance(points, torch.Tensor) or points.dim() != 3 or points.shape[-1] != 3:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise OpError(f"{name} must have shape (B, N, 3), got {shape}")
    if points.dtype not in _FLOAT_DTYPES:
        raise OpError(f"{name} must be float16, bfloat16, float32 or float64, got {points.dtype}")
    B, N, _ = points.shape
    if B == 0 or N == 0:
        raise OpError(f"{name} is empty: shape {tuple(points.shape)}")
    has_data = _has_values(points)
    if check_finite and has_data and not bool(torch.isfinite(points).all()):
        raise OpError(f"{name} contains NaN or Inf")
    if lengths is None:
        return None
    if not isinstance(lengths, torch.Tensor):
        raise OpError(f"{name} lengths must be a tensor, got {type(lengths).__name__}")
    if lengths.shape != (B,) or lengths.dtype not in _INT_DTYPES:
        got = f"{lengths.dtype} {tuple(lengths.shape)}"
        raise OpError(f"{name} lengths must be an integer tensor of shape ({B},), got {got}")
    lengths = lengths.to(device=points.device, dtype=torch.int64)
    if has_data and not bool(((lengths >= 1) & (lengths <= N)).all()):
        raise OpError(f"{name} lengths must lie in [1, {N}] (no empty cloud), got {lengths.tolist()}")
    return lengths


def _has_values(tensor: torch.Tensor) -> bool:
    """False for meta tensors (shape inference), whose values cannot be checked."""
    return tensor.device.type != "meta"


def check_same_batch(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    """Raises OpError unless ``a`` and ``b`` have the same batch size and live on the same device."""
    if a.shape[0] != b.shape[0] or a.device != b.device:
        raise OpError(
            f"{a_name} and {b_name} must share batch size and device, got {a.shape[0]} on {a.device} "
            f"and {b.shape[0]} on {b.device}"
        )


def check_count(what: str, count: int, points: torch.Tensor, lengths: torch.Tensor | None) -> None:
    """Raises OpError unless ``1 <= count <= `` the size of the smallest cloud; the message names both."""
    if count < 1:
        raise OpError(f"{what} must be at least 1, got {count}")
    if lengths is None:
        if count > points.shape[1]:
            raise OpError(f"{what}={count} exceeds the cloud size {points.shape[1]}")
        return
    if not _has_values(lengths):
        return
    smallest = int(lengths.min())
    if count > smallest:
        cloud = int(lengths.argmin())
        raise OpError(f"{what}={count} exceeds the size of cloud {cloud} ({smallest} points)")


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype distances are computed in: float64 if any input is float64, float32 otherwise."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def padding_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size)`` bool mask, True at the padded positions ``j >= lengths[b]``."""
    return torch.arange(size, device=lengths.device) >= lengths[:, None]


METHODS = ("auto", "dense", "buckets")


def check_method(method: str) -> None:
    """Raises OpError unless ``method`` is one of :data:`METHODS`."""
    if method not in METHODS:
        raise OpError(f"method must be 'auto', 'dense' or 'buckets', got {method!r}")
