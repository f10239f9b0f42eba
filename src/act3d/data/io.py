"""Safe low-level readers: point files, meshes, HDF5 and restricted pickles.

Every problem with a file becomes a ``DataError(path, problem)``. Nothing here executes code
from a file: ``np.load`` always runs with ``allow_pickle=False`` and pickles go through
:func:`safe_pickle_load`.
"""

from __future__ import annotations

import codecs
import os
import pickle
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from act3d.errors import DataError

PathLike = str | os.PathLike[str]

POINT_SUFFIXES = (".npy", ".npz", ".txt", ".xyz", ".pts")
MESH_SUFFIXES = (".ply", ".off", ".obj", ".stl")
SUPPORTED_SUFFIXES = POINT_SUFFIXES + MESH_SUFFIXES

_np_core = np._core if hasattr(np, "_core") else np.core
# Globals a pickle of numpy arrays, numpy scalars and builtin containers needs, under the module
# names numpy 1.x ("numpy.core") and 2.x ("numpy._core") write. Nothing else is ever resolved.
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{
        (f"numpy.{core}.{module}", name): getattr(getattr(_np_core, module), name)
        for core in ("core", "_core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        )
    },
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # protocol 2 writes bytes this way
    **{
        (module, t.__name__): t
        for module in ("builtins", "__builtin__")  # protocols 0-2 write "__builtin__"
        for t in (list, dict, tuple, set, int, float, str, bool, complex)
    },
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(
                f"refers to '{module}.{name}', which is not allowed "
                "(only numpy arrays, numbers, strings and builtin containers are loaded)"
            ) from None


def require_file(path: PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise DataError if it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} does not exist" if not path.exists() else f"{what} is not a file")
    return path


def safe_pickle_load(path: PathLike) -> Any:
    """Unpickle ``path`` allowing only numpy arrays/scalars and builtin containers and scalars.

    A pickle that names any other global (``os.system``, ``eval``...) raises DataError before
    anything is called.
    """
    path = require_file(path)
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f).load()
        except _ForbiddenGlobal as exc:
            raise DataError(path, f"unsafe pickle: {exc}") from None
        except Exception as exc:  # truncated or garbage bytes raise many types
            raise DataError(path, f"is not a valid pickle ({type(exc).__name__}: {exc})") from None


def check_cloud(array: np.ndarray, path: PathLike | None, min_columns: int = 3, sample: int | None = None) -> None:
    """Raise DataError unless ``array`` is a non-empty finite (N, C) numeric array with C >= min_columns.

    ``sample`` names the cloud's index inside a file that holds many.
    """
    who = "" if sample is None else f"sample {sample} "
    if array.size == 0:
        raise DataError(path, f"{who}is empty (no points)")
    if array.ndim != 2:
        raise DataError(path, f"{who}has shape {array.shape}, expected (N, C) with C >= {min_columns}")
    if array.shape[1] < min_columns:
        xyz = " (x, y, z)" if min_columns == 3 else ""
        raise DataError(path, f"{who}has {array.shape[1]} columns, expected at least {min_columns}{xyz}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(path, f"{who}has dtype {array.dtype}, expected numbers")
    for bad, what in ((np.isnan(array), "NaN"), (np.isinf(array), "infinite")):
        if bad.any():
            row = np.flatnonzero(bad.any(axis=1))[0]
            raise DataError(path, f"{who}contains {int(bad.sum())} {what} values (first in row {row})")


def check_clouds(array: np.ndarray, path: PathLike, min_columns: int = 3) -> None:
    """Raise DataError unless ``array`` is a non-empty finite stack of clouds (S, N, C); names bad samples."""
    if array.ndim != 3 or array.shape[0] == 0:
        raise DataError(path, f"has point array of shape {array.shape}, expected (samples, points, {min_columns})")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(path, f"has point array of dtype {array.dtype}, expected numbers")
    bad = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))
    i = int(bad[0]) if bad.size else 0  # the first non-finite sample; else sample 0 checks the shape
    check_cloud(array[i], path, min_columns, sample=i)


def check_labels(
    labels: np.ndarray, path: PathLike, num_samples: int, num_classes: int, classes_from: str
) -> np.ndarray:
    """Labels (S,) or (S, 1) as int64 (S,), or DataError if the count, type or range is wrong."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (num_samples,):
        raise DataError(
            path, f"has labels of shape {labels.shape}, expected ({num_samples},) for {num_samples} samples"
        )
    if not np.issubdtype(labels.dtype, np.number) or not np.array_equal(labels, np.round(labels)):
        raise DataError(path, f"has non-integer labels (dtype {labels.dtype})")
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(
            path,
            f"label {labels[bad[0]]} of sample {bad[0]} is outside 0..{num_classes - 1} "
            f"({num_classes} classes in {classes_from}; {bad.size} labels out of range)",
        )
    return labels


def _read_text(path: Path) -> np.ndarray:
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = "," if "," in first else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported by check_cloud
            return np.loadtxt(lines, delimiter=delimiter, dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise DataError(path, f"is not a table of numbers ({exc})") from None


def _read_npy(path: Path) -> np.ndarray:
    """The array of a .npy file, or of a .npz file: its ``points`` array or its only array."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            keys = list(loaded.files)
            if "points" in keys or len(keys) == 1:
                return loaded["points" if "points" in keys else keys[0]]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(path, "holds pickled Python objects, which are never loaded") from None
        raise DataError(path, f"is not a valid numpy file ({exc})") from None
    except Exception as exc:  # corrupt files raise many types (OSError, BadZipFile, TokenError...)
        raise DataError(path, f"is not a valid numpy file ({type(exc).__name__}: {exc})") from None
    raise DataError(path, f"has arrays {keys}; expected one named 'points' or a single array")


def _read_mesh(path: Path, num_samples: int, seed: int) -> np.ndarray:
    import trimesh

    try:
        geometry = trimesh.load(path, process=False)
    except Exception as exc:  # trimesh raises many types on malformed files
        raise DataError(path, f"cannot be read as a mesh ({type(exc).__name__}: {exc})") from None
    if isinstance(geometry, trimesh.Scene):
        geometry = geometry.to_geometry()
    faces = getattr(geometry, "faces", None)
    if faces is None or len(faces) == 0:  # a point cloud (e.g. .ply with vertices only)
        return np.asarray(geometry.vertices, dtype=np.float32)
    if not geometry.area > 0:
        raise DataError(path, "is a mesh with zero surface area")
    points, _ = trimesh.sample.sample_surface(geometry, num_samples, seed=seed)
    return np.asarray(points, dtype=np.float32)


def read_point_file(path: PathLike, num_samples: int = 8192, seed: int = 0) -> np.ndarray:
    """Read a point file as a float32 array (N, C), C >= 3, checked by :func:`check_cloud`.

    ``.npy``/``.npz`` (array ``points`` or the only array), ``.txt``/``.xyz``/``.pts`` (comma or
    whitespace separated); meshes ``.ply``/``.off``/``.obj``/``.stl`` give ``num_samples`` points
    sampled uniformly on the surface with ``seed`` (a ``.ply`` without faces gives its vertices).
    """
    path = require_file(path)
    if path.stat().st_size == 0:
        raise DataError(path, "is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        array = _read_npy(path)
    elif suffix in (".txt", ".xyz", ".pts"):
        array = _read_text(path)
    elif suffix in MESH_SUFFIXES:
        array = _read_mesh(path, num_samples, seed)
    else:
        raise DataError(path, f"has unsupported extension {suffix!r} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    check_cloud(array, path)
    return np.asarray(array, dtype=np.float32)


def read_h5(path: PathLike, keys: Sequence[str] = ("data", "label")) -> dict[str, np.ndarray]:
    """Read datasets ``keys`` of an HDF5 file fully into memory."""
    import h5py

    path = require_file(path)
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if k not in f]
            if missing:
                raise DataError(path, f"has no dataset {missing[0]!r} (found: {sorted(f.keys())})")
            return {k: np.asarray(f[k]) for k in keys}
    except OSError as exc:
        raise DataError(path, f"is not a readable HDF5 file ({exc})") from None


def read_lines(path: PathLike, what: str = "file") -> list[str]:
    """Non-empty stripped lines of a text file (split lists, class names)."""
    path = require_file(path, what)
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def check_files_exist(paths: list[Path], listed_in: PathLike) -> None:
    """Raise DataError naming the first of ``paths`` that is missing; one directory listing per folder."""
    listings: dict[Path, set[str]] = {}
    missing = []
    for p in paths:
        if p.parent not in listings:
            listings[p.parent] = set(os.listdir(p.parent)) if p.parent.is_dir() else set()
        if p.name not in listings[p.parent]:
            missing.append(p)
    if missing:
        raise DataError(
            missing[0],
            f"does not exist but is listed in {os.fspath(listed_in)} "
            f"({len(missing)} of {len(paths)} listed files are missing)",
        )
