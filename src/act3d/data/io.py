"""Safe low-level readers: point files, meshes, HDF5 and restricted pickles.

Every problem with a file becomes a ``DataError(path, problem)``. Nothing here executes code
from a file: ``np.load`` always runs with ``allow_pickle=False`` and pickles go through
:func:`safe_pickle_load`.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from act3d.errors import DataError
from act3d.util.files import available_memory

PathLike = str | os.PathLike[str]

POINT_SUFFIXES = (".npy", ".npz", ".txt", ".xyz", ".pts")
MESH_SUFFIXES = (".ply", ".off", ".obj", ".stl")
SUPPORTED_SUFFIXES = POINT_SUFFIXES + MESH_SUFFIXES

_SIMPLE_KINDS = "biufcSUO"  # numbers, bytes/str and object arrays; no structured or datetime dtypes


class _PickledDtype:
    """Stands in for ``numpy.dtype`` while unpickling: numpy's own ``dtype.__setstate__`` trusts the
    pickled flags (a float32 flagged as holding object pointers is then freed as objects), so the
    state is read here and a dtype is rebuilt from its type code and byte order only."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(spec, str) or np.dtype(spec).kind not in _SIMPLE_KINDS or np.dtype(spec).names:
            raise pickle.UnpicklingError(f"dtype {spec!r} is not allowed (only numbers, strings and objects)")
        self.spec, self.byteorder = spec, "="

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")):
            raise pickle.UnpicklingError(f"malformed dtype state {state!r:.80}")
        if state[3] is not None or state[4] is not None:
            raise pickle.UnpicklingError("structured dtypes are not allowed")
        self.byteorder = state[1]

    def build(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" and dtype.byteorder != "|" else dtype


def _real_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, _PickledDtype):
        raise pickle.UnpicklingError(f"expected a dtype, found {type(dtype).__name__}")
    return dtype.build()


def _array_from(data: Any, dtype: np.dtype, shape: Any, order: str) -> np.ndarray:
    """A new array of ``shape`` from raw bytes (or a list, for object arrays), sizes checked."""
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise pickle.UnpicklingError(f"malformed array shape {shape!r:.80}")
    count = int(np.prod(shape, dtype=object))
    if dtype.hasobject:
        if not isinstance(data, list) or len(data) != count:
            raise pickle.UnpicklingError(f"object array of shape {shape} needs a list of {count} items")
        flat = np.empty(count, dtype=object)
        flat[:] = data
    else:
        if not isinstance(data, bytes | bytearray) or len(data) != count * dtype.itemsize:
            size = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
            need = count * dtype.itemsize
            raise pickle.UnpicklingError(f"array of shape {shape} {dtype} needs {need} bytes, got {size}")
        flat = np.frombuffer(data, dtype=dtype, count=count).copy()
    return flat.reshape(shape, order=order)


class _PickledArray:
    """Stands in for ``numpy.core.multiarray._reconstruct(ndarray, ...)``; BUILD gives it shape, dtype and data."""

    def __init__(self, cls: Any, shape: Any = (0,), typecode: Any = b"b") -> None:
        if cls is not np.ndarray:
            raise pickle.UnpicklingError("only plain numpy arrays are allowed")
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError(f"malformed array state {state!r:.80}")
        shape, dtype, fortran, data = state[-4:]
        self.array = _array_from(data, _real_dtype(dtype), shape, "F" if fortran else "C")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy.core.numeric._frombuffer`` (protocol 5), with the same checks."""
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"malformed array order {order!r:.20}")
    return _array_from(bytes(buffer) if isinstance(buffer, bytearray) else buffer, _real_dtype(dtype), shape, order)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar``: a numpy scalar from its dtype and raw bytes."""
    dtype = _real_dtype(dtype)
    if dtype.hasobject:
        return data
    return _array_from(data, dtype, (), "C")[()]


def _materialize(obj: Any, seen: dict[int, Any]) -> Any:
    """``obj`` with every stand-in replaced by the real array / dtype (containers are updated in place)."""
    if isinstance(obj, _PickledArray):
        if obj.array is None:
            raise pickle.UnpicklingError("an array without data")
        return obj.array
    if isinstance(obj, _PickledDtype):
        return obj.build()
    if not isinstance(obj, list | dict | tuple | set) or id(obj) in seen:
        return seen.get(id(obj), obj)
    seen[id(obj)] = obj
    if isinstance(obj, list):
        obj[:] = [_materialize(v, seen) for v in obj]
    elif isinstance(obj, dict):
        items = [(_materialize(k, seen), _materialize(v, seen)) for k, v in obj.items()]
        obj.clear()
        obj.update(items)
    elif isinstance(obj, tuple):
        seen[id(obj)] = obj = tuple(_materialize(v, seen) for v in obj)
    else:
        seen[id(obj)] = obj = {_materialize(v, seen) for v in obj}
    return obj


# Globals a pickle of numpy arrays, numpy scalars and builtin containers needs, under the module
# names numpy 1.x ("numpy.core") and 2.x ("numpy._core") write. Nothing else is ever resolved, and
# the numpy ones are stand-ins that rebuild arrays from checked raw bytes (see _PickledDtype).
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{
        (f"numpy.{core}.{module}", name): function
        for core in ("core", "_core")
        for module, name, function in (
            ("multiarray", "_reconstruct", _PickledArray),
            ("multiarray", "scalar", _scalar),
            ("numeric", "_frombuffer", _frombuffer),
        )
    },
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _PickledDtype,
    ("_codecs", "encode"): codecs.encode,  # protocol 2 writes bytes this way
    **{
        (module, t.__name__): t
        for module in ("builtins", "__builtin__")  # protocols 0-2 write "__builtin__"
        for t in (list, dict, tuple, set, frozenset, int, float, str, bytes, bytearray, bool, complex)
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

    def load(self) -> Any:
        return _materialize(super().load(), {})


def require_file(path: PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise DataError if it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} does not exist" if not path.exists() else f"{what} is not a file")
    return path


def safe_pickle_load(path: PathLike) -> Any:
    """Unpickle ``path`` allowing only numpy arrays/scalars and builtin containers and scalars.

    A pickle that names any other global (``os.system``, ``eval``...) raises DataError before
    anything is called. Arrays are rebuilt from their raw bytes with a plain dtype (numbers, strings
    or objects) and a checked size; numpy's own unpickling code is never handed the file's state.
    """
    path = require_file(path)
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f).load()
        except _ForbiddenGlobal as exc:
            raise DataError(path, f"unsafe pickle: {exc}") from None
        except Exception as exc:  # truncated or garbage bytes raise many types
            raise DataError(path, f"is not a valid pickle ({type(exc).__name__}: {exc})") from None


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _beyond_float32(array: np.ndarray) -> np.ndarray:
    """Bool mask of the finite values that would become infinite as float32 (only wider floats have them)."""
    if array.dtype.kind != "f" or array.dtype.itemsize <= 4:
        return np.zeros(array.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.abs(array) > FLOAT32_MAX


def check_cloud(array: np.ndarray, path: PathLike | None, min_columns: int = 3, sample: int | None = None) -> None:
    """Raise DataError unless ``array`` is a non-empty finite (N, C) real array with C >= min_columns,
    whose values fit in float32 (every reader returns float32).

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
    if array.dtype.kind not in "iuf":
        raise DataError(path, f"{who}has dtype {array.dtype}, expected real numbers")
    if np.isfinite(array).all() and not _beyond_float32(array).any():
        return  # the usual case: no per-row diagnosis needed
    for bad, what in (
        (np.isnan(array), "NaN values"),
        (np.isinf(array), "infinite values"),
        (_beyond_float32(array), f"values beyond float32's range (|v| > {FLOAT32_MAX:.3g})"),
    ):
        if bad.any():
            row = np.flatnonzero(bad.any(axis=1))[0]
            raise DataError(path, f"{who}contains {int(bad.sum())} {what} (first in row {row})")


def check_clouds(array: np.ndarray, path: PathLike, min_columns: int = 3) -> None:
    """Raise DataError unless ``array`` is a non-empty finite stack of clouds (S, N, C); names bad samples."""
    if array.ndim != 3 or array.shape[0] == 0:
        raise DataError(path, f"has point array of shape {array.shape}, expected (samples, points, {min_columns})")
    if array.dtype.kind not in "iuf":
        raise DataError(path, f"has point array of dtype {array.dtype}, expected real numbers")
    flat = array.reshape(len(array), -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1) | _beyond_float32(flat).any(axis=1))
    i = int(bad[0]) if bad.size else 0  # the first bad sample; else sample 0 checks the shape
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


def check_fits_in_memory(path: PathLike, nbytes: int, what: str) -> None:
    """Raise DataError when a file declares an array larger than the memory available to read it."""
    limit = available_memory()
    if nbytes > limit:
        raise DataError(
            path, f"{what} declares {nbytes / 2**30:.3g} GiB, more than the {limit / 2**30:.3g} GiB of memory available"
        )


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
