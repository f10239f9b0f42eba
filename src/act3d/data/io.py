"""Safe low-level readers: point files, meshes, HDF5 (pickles: ``data.unpickle``; checks: ``data.checks``).

Every problem with a file becomes a ``DataError(path, problem)``. Nothing here executes code
from a file: ``np.load`` always runs with ``allow_pickle=False`` and pickles go through
:func:`safe_pickle_load`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from act3d.data.checks import (
    FLOAT32_MAX,
    PathLike,
    check_cloud,
    check_clouds,
    check_files_exist,
    check_fits_in_memory,
    check_labels,
    require_file,
)
from act3d.data.unpickle import safe_pickle_load
from act3d.errors import DataError

__all__ = [  # the checks and the unpickler live in their own modules; readers import them from here too
    "FLOAT32_MAX",
    "MESH_SUFFIXES",
    "POINT_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "PathLike",
    "check_cloud",
    "check_clouds",
    "check_files_exist",
    "check_fits_in_memory",
    "check_labels",
    "read_h5",
    "read_lines",
    "read_npz",
    "read_point_file",
    "require_file",
    "safe_pickle_load",
]

POINT_SUFFIXES = (".npy", ".npz", ".txt", ".xyz", ".pts")
MESH_SUFFIXES = (".ply", ".off", ".obj", ".stl")
SUPPORTED_SUFFIXES = POINT_SUFFIXES + MESH_SUFFIXES


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


@contextlib.contextmanager
def _numpy_errors(path: Path) -> Iterator[None]:
    """Turn what ``np.load`` raises on a bad file into a DataError naming ``path``."""
    try:
        yield
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(path, "holds pickled Python objects, which are never loaded") from None
        raise DataError(path, f"is not a valid numpy file ({exc})") from None
    except Exception as exc:  # corrupt files raise many types (OSError, BadZipFile, EOFError, TokenError...)
        raise DataError(path, f"is not a valid numpy file ({type(exc).__name__}: {exc})") from None


def _member(npz: Any, key: str, path: Path) -> np.ndarray:
    array = npz[key]
    if not isinstance(array, np.ndarray):  # a member that is not a .npy comes back as bytes
        raise DataError(path, f"member {key!r} is not a .npy array")
    return array


def _read_npy(path: Path) -> np.ndarray:
    """The array of a .npy file, or of a .npz file: its ``points`` array or its only array."""
    with _numpy_errors(path):
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            keys = list(loaded.files)
            if "points" in keys or len(keys) == 1:
                return _member(loaded, "points" if "points" in keys else keys[0], path)
    raise DataError(path, f"has arrays {keys}; expected one named 'points' or a single array")


def read_npz(path: PathLike, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Read arrays ``keys`` of a ``.npz`` file (never unpickling) fully into memory."""
    path = require_file(path)
    with _numpy_errors(path), np.load(path, allow_pickle=False) as npz:
        if not hasattr(npz, "files"):
            raise DataError(path, "is a single .npy array, expected a .npz archive")
        missing = [k for k in keys if k not in npz.files]
        if missing:
            raise DataError(path, f"has no array {missing[0]!r} (found: {sorted(npz.files)})")
        return {k: _member(npz, k, path) for k in keys}


def _read_mesh(path: Path, num_samples: int, seed: int) -> np.ndarray:
    """Surface samples (or the vertices of a face-less file), float64: check_cloud checks the range."""
    import trimesh

    try:
        geometry = trimesh.load(path, process=False)
        if isinstance(geometry, trimesh.Scene):
            if not geometry.geometry:
                raise DataError(path, "holds no geometry")
            geometry = geometry.to_geometry()
        vertices = np.asarray(geometry.vertices)
        faces = getattr(geometry, "faces", None)
        if faces is None or len(faces) == 0:  # a point cloud (e.g. .ply with vertices only)
            return vertices
        faces = np.asarray(faces)
        if faces.min() < 0 or faces.max() >= len(vertices):
            bad = faces.max() if faces.max() >= len(vertices) else faces.min()
            raise DataError(path, f"has a face using vertex {bad}, but only {len(vertices)} vertices")
        area = float(geometry.area)
        if not (np.isfinite(area) and area > 0):
            raise DataError(path, f"is a mesh with {'zero' if area == 0 else 'non-finite'} surface area")
        points, _ = trimesh.sample.sample_surface(geometry, num_samples, seed=seed)
        return np.asarray(points)
    except DataError:
        raise
    except Exception as exc:  # trimesh raises many types on malformed files
        raise DataError(path, f"cannot be read as a mesh ({type(exc).__name__}: {exc})") from None


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
            out = {}
            for k in keys:
                node = f[k]
                if not isinstance(node, h5py.Dataset):
                    raise DataError(path, f"{k!r} is a {type(node).__name__}, expected a dataset")
                if node.shape is None:
                    raise DataError(path, f"dataset {k!r} is empty (null dataspace)")
                check_fits_in_memory(path, node.size * node.dtype.itemsize, f"dataset {k!r} of shape {node.shape}")
                out[k] = np.asarray(node[()])
            return out
    except DataError:
        raise
    except Exception as exc:  # corrupt files raise OSError, RuntimeError, KeyError, TypeError, ValueError...
        raise DataError(path, f"is not a readable HDF5 file ({type(exc).__name__}: {exc})") from None


def read_lines(path: PathLike, what: str = "file") -> list[str]:
    """Non-empty stripped lines of a text file (split lists, class names)."""
    path = require_file(path, what)
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]
