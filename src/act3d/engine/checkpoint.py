"""Checkpoints: written atomically, read safely (``weights_only=True``), holding everything to resume.

A training checkpoint is a dict ``{"model", "optimizer", "scheduler", "scaler", "epoch",
"step_in_epoch", "global_step", "best_epoch", "best_metrics", "history", "metrics", "rng",
"config"}``; ``model`` is the unwrapped (non-DDP) state dict. The atomic write and the safe read live in
:mod:`act3d.util.files` (models use them too); this module adds the random states a resume restores.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from act3d.util.files import atomic_path, load_checkpoint, numpy_scalar_globals, save_checkpoint

__all__ = ["atomic_path", "load_checkpoint", "numpy_scalar_globals", "rng_state", "save_checkpoint", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch (CPU and CUDA) random states, in a ``weights_only``-loadable form."""
    return {
        "python": _to_tensor_tree(random.getstate()),
        "numpy": _to_tensor_tree(np.random.get_state()),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    python = state["python"]
    random.setstate((int(python[0]), tuple(int(v) for v in python[1].tolist()), _optional_float(python[2])))
    np_state = state["numpy"]
    np.random.set_state(
        (
            str(np_state[0]),
            np_state[1].numpy().astype(np.uint32),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tensor_tree(state: tuple) -> list[Any]:
    """RNG tuples hold numpy arrays and long tuples: store them as tensors so weights_only loads them."""
    out: list[Any] = []
    for item in state:
        if isinstance(item, np.ndarray):
            out.append(torch.from_numpy(item.astype(np.int64)))
        elif isinstance(item, tuple):
            out.append(torch.tensor(item, dtype=torch.int64))
        else:
            out.append(item)
    return out


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
