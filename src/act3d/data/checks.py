"""Input checks shared by every reader: the file exists, the clouds are finite and float32-safe, the
labels are in range, the array fits in memory, the listed files are there. Each raises ``DataError(path,
problem)``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from act3d.errors import DataError
from act3d.util.files import available_memory

PathLike = str | os.PathLike[str]


def require_file(path: PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise DataError if it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} does not exist" if not path.exists() else f"{what} is not a file")
    return path


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


def check_fits_in_memory(path: PathLike, nbytes: int, what: str) -> None:
    """Raise DataError when a file declares an array larger than the memory available to read it."""
    limit = available_memory()
    if nbytes > limit:
        raise DataError(
            path, f"{what} declares {nbytes / 2**30:.3g} GiB, more than the {limit / 2**30:.3g} GiB of memory available"
        )


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
