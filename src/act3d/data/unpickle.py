"""A restricted unpickler: numpy arrays and scalars, numbers, strings and builtin containers, nothing else.

The official ModelNet40 ``.dat`` caches and few-shot folds are pickles; they are read here, so that a
hostile pickle never runs code (see docs/data.md).
"""

from __future__ import annotations

import codecs
import pickle
from typing import Any

import numpy as np

from act3d.data.checks import PathLike, require_file
from act3d.errors import DataError

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
