"""File helpers every layer may use: atomic writes, safe checkpoint reads, available memory.

Models, objectives, data and the engine all write or read files; keeping these helpers here lets them do
so without importing one another (docs/architecture.md, "dependencies").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from act3d.errors import CheckpointError


@contextlib.contextmanager
def atomic_path(path: str | Path, unique: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to. When the block succeeds the file is fsynced and
    renamed over ``path``; if it fails the temporary file is removed. A failed or killed write leaves
    the previous ``path`` intact and readers never see a partial file.

    The temporary file is ``.<name>.tmp``, which the next write replaces if a kill left it behind;
    ``unique`` makes a fresh ``.<name>.<random>.tmp`` instead, for files that several processes may
    write at once (a shared cache).
    """
    path = Path(path)
    if unique:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
    else:
        tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` atomically (:func:`atomic_path`): on failure the previous file is untouched."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            torch.save(state, handle)
    except OSError as err:
        raise CheckpointError(f"{path}: could not write checkpoint ({err}); the previous one is intact") from err


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``: no code in the file is ever run.

    Besides tensors and plain containers, numpy numeric scalars are allowed (official ACT runners
    store SVM accuracies as ``numpy.float64`` in ``metrics``): exactly the scalar constructor and
    the numeric dtypes, under numpy 1.x and 2.x module names, nothing that can run code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(numpy_scalar_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(state).__name__}")
    return state


def numpy_scalar_globals() -> list[Any]:
    """The globals a pickled numpy numeric scalar needs: ``multiarray.scalar`` (under the numpy 1.x and
    2.x module paths), ``numpy.dtype`` and the dtype classes of booleans, integers, floats and complex
    numbers. Object, string and structured dtypes stay refused."""
    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    numeric = {type(np.dtype(code)) for code in "?bhilqpBHILQPefdgFDG"}
    aliases = [(scalar, f"{module}.multiarray.scalar") for module in ("numpy.core", "numpy._core")]
    return [scalar, *aliases, np.dtype, *sorted(numeric, key=lambda cls: cls.__name__)]


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux, else the physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63
