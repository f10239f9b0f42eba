"""Fuzz every act3d reader with malformed inputs and count what happens.

    .venv/bin/python bench/fuzz.py --inputs 5000          # the full campaign (a table per reader)
    .venv/bin/python bench/fuzz.py --inputs 300 --only npz,checkpoint --seed 3

Each reader is a *target*: a small valid dataset (or checkpoint) written from scratch, the files of it
that may be damaged, and the call that reads it the way ``act3d`` does (``build_dataset`` then every
item, ``load_checkpoint``, ``load_encoder``). Inputs are generated with hypothesis, half by mutating
the valid files (byte flips, truncation, insertion, deletion, duplication, overwritten integers,
text tokens such as ``nan`` / ``1e39`` / non-UTF-8 bytes, dropped or added columns), half by
structured generation (arrays of any shape and dtype with NaN/Inf/huge values, ``.npy`` headers and
HDF5 datasets declaring 10^12 elements, pickles of odd structures, pickles that would run code,
meshes whose headers lie, non-UTF-8 file names, checkpoints with hostile configs...).

Every input must end in one of:

* ``loaded``: the reader returned, and every item is what docs/data.md promises (finite float32
  ``(npoints, 3)`` points, labels and part ids in range);
* ``DataError`` / ``CheckpointError``: the project's own error, whose message names the damaged
  file (its path under the input folder).

Anything else is a failure: another exception type (``WRONG-ERROR``), an error that does not name the
file (``UNNAMED``), items that break the promise (``BAD-OUTPUT``), more than ``--timeout`` seconds
(``TIMEOUT``, enforced by a watchdog thread that interrupts the main thread) or a marker file created
by a pickle's payload (``CODE-RAN``; checked after every input). Failing inputs are kept under
``--keep`` for reproduction. The test suite runs a slice of the same campaign
(tests/reliability/test_fuzz_readers.py).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import logging
import operator
import os
import pathlib
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from act3d.data import build_dataset
from act3d.data.io import read_point_file, safe_pickle_load
from act3d.engine.checkpoint import load_checkpoint
from act3d.errors import CheckpointError, DataError
from act3d.models.encoder_io import load_encoder, save_encoder
from act3d.models.point_transformer import EncoderConfig, PointEncoder

NPOINTS = 32  # every dataset target is read at 32 points per cloud
OK = ("loaded", "DataError", "CheckpointError")
FAILURES = ("WRONG-ERROR", "UNNAMED", "BAD-OUTPUT", "TIMEOUT", "CODE-RAN")


# ----------------------------------------------------------------------------------------------
# outcomes
# ----------------------------------------------------------------------------------------------
class InputTimeout(BaseException):
    """Raised in the main thread by the watchdog; a BaseException so that no reader's ``except`` eats it."""


class BadOutputError(Exception):
    """A reader returned data that breaks its documented promise."""


@dataclass
class Case:
    """One generated input: files (relative path -> bytes) and the file an error must name."""

    files: dict[str, bytes]
    blame: str  # relative path of the damaged file; "" = any file under the input folder
    how: str


@dataclass
class Outcome:
    kind: str
    detail: str = ""


@contextlib.contextmanager
def watchdog(seconds: float):
    """Raise InputTimeout in the main thread after ``seconds`` (SIGUSR1 from a timer thread).

    Not SIGALRM: pytest-timeout owns that one. A C call that never returns to Python is caught by
    the hard backstop of :func:`run_case` (faulthandler exits the process with every stack).
    """
    main = threading.main_thread().ident

    def interrupt(signum, frame):
        raise InputTimeout(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(seconds, lambda: signal.pthread_kill(main, signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


def write_case(case: Case, root: Path) -> None:
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def run_case(target: Target, case: Case, root: Path, marker: Path, timeout: float) -> Outcome:
    """Write ``case`` under ``root`` (which must not exist), read it with ``target``, classify what happened."""
    write_case(case, root)
    faulthandler.dump_traceback_later(timeout * 20 + 30, exit=True)  # hard backstop for a hang in C
    try:
        with warnings.catch_warnings(), watchdog(timeout):
            warnings.simplefilter("ignore")
            target.load(root)
        outcome = Outcome("loaded")
    except InputTimeout as err:
        outcome = Outcome("TIMEOUT", str(err))
    except (DataError, CheckpointError) as err:
        blame = os.fspath(root / case.blame) if case.blame else os.fspath(root)
        message = str(err)
        named = message.startswith(os.fspath(root)) and (not case.blame or Path(blame).name in message)
        outcome = Outcome(type(err).__name__ if named else "UNNAMED", message[:300])
    except BadOutputError as err:
        outcome = Outcome("BAD-OUTPUT", str(err)[:300])
    except Exception as err:
        outcome = Outcome("WRONG-ERROR", f"{type(err).__name__}: {str(err)[:300]}")
    finally:
        faulthandler.cancel_dump_traceback_later()
    if marker.exists():
        marker.unlink()
        outcome = Outcome("CODE-RAN", f"a payload created {marker}; previous outcome {outcome.kind}")
    return outcome


# ----------------------------------------------------------------------------------------------
# checks of what a reader returned
# ----------------------------------------------------------------------------------------------
def check_dataset(dataset) -> None:
    """Every item holds finite float32 (NPOINTS, 3) points and in-range labels (and part ids)."""
    if len(dataset) == 0:
        raise BadOutputError("an empty dataset was built without an error")
    for i in range(len(dataset)):
        item = dataset[i]
        points = item["points"]
        if points.dtype != torch.float32 or tuple(points.shape) != (NPOINTS, 3):
            raise BadOutputError(f"item {i}: points {points.dtype} {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise BadOutputError(f"item {i}: non-finite points")
        label = int(item["label"])
        if not 0 <= label < dataset.num_classes:
            raise BadOutputError(f"item {i}: label {label} outside 0..{dataset.num_classes - 1}")
        if "normals" in item and not torch.isfinite(item["normals"]).all():
            raise BadOutputError(f"item {i}: non-finite normals")
        if "parts" in item:
            allowed = dataset.part_classes[dataset.classes[label]]
            if not torch.isin(item["parts"], torch.tensor(allowed)).all():
                raise BadOutputError(f"item {i}: part ids outside {allowed}")


# ----------------------------------------------------------------------------------------------
# valid files
# ----------------------------------------------------------------------------------------------
def cloud(n: int, columns: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, columns)).astype(np.float32)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype == object)
    return buffer.getvalue()


def npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, allow_pickle=True, **arrays)
    return buffer.getvalue()


def table(array: np.ndarray, sep: str = ",") -> bytes:
    return ("\n".join(sep.join(f"{v:.6f}" for v in row) for row in array) + "\n").encode()


def h5(datasets: dict[str, Callable[[h5py.File], None] | np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, value in datasets.items():
            if callable(value):
                value(f)
            else:
                f.create_dataset(key, data=value)
    return buffer.getvalue()


def mesh_bytes(kind: str) -> bytes:
    import trimesh

    if kind == "ply-points":
        return trimesh.PointCloud(cloud(64, 3, 7)).export(file_type="ply")
    data = trimesh.creation.box(extents=(1.0, 2.0, 3.0)).export(file_type=kind)
    return data.encode() if isinstance(data, str) else data


def shapenet55_files() -> dict[str, bytes]:
    names = ["02691156-a1.npy", "02691156-a2.npy", "03001627-c1.npy"]
    files = {f"shapenet_pc/{n}": npy(cloud(64, 3, i)) for i, n in enumerate(names)}
    files["ShapeNet-55/train.txt"] = ("\n".join(names[:2]) + "\n").encode()
    files["ShapeNet-55/test.txt"] = (names[2] + "\n").encode()
    return files


MN = "modelnet40_normal_resampled"


def modelnet_files(with_cache: bool) -> dict[str, bytes]:
    files = {
        f"{MN}/modelnet10_shape_names.txt": b"chair\nnight_stand\n",
        f"{MN}/modelnet10_train.txt": b"chair_0001\nnight_stand_0001\n",
        f"{MN}/modelnet10_test.txt": b"chair_0002\n",
        f"{MN}/chair/chair_0001.txt": table(cloud(64, 6, 1)),
        f"{MN}/night_stand/night_stand_0001.txt": table(cloud(64, 6, 2)),
        f"{MN}/chair/chair_0002.txt": table(cloud(64, 6, 3)),
    }
    if with_cache:
        clouds = [cloud(64, 6, 4), cloud(64, 6, 5), cloud(48, 6, 6)]
        labels = [np.array([0], np.int32), np.array([1], np.int32), np.array([1], np.int32)]
        files[f"{MN}/modelnet10_train_8192pts_fps.dat"] = pickle.dumps([clouds, labels], protocol=4)
    return files


def fewshot_files() -> dict[str, bytes]:
    train = [(cloud(64, 6, 10 + i), i % 2, [8, 23][i % 2]) for i in range(4)]
    test = [(cloud(64, 6, 20), 1, 23)]
    return {"ModelNetFewshot/2way1shot/0.pkl": pickle.dumps({"train": train, "test": test}, protocol=4)}


SCAN = "h5_files/main_split/training_objectdataset.h5"


def scanobjectnn_files() -> dict[str, bytes]:
    data = np.stack([cloud(64, 3, 30 + i) for i in range(4)])
    return {SCAN: h5({"data": data, "label": np.array([0, 3, 14, 7], np.uint8)})}


PART = "shapenetcore_partanno_segmentation_benchmark_v0_normal"


def part_cloud(parts: list[int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    array = np.concatenate([cloud(64, 6, seed), rng.choice(parts, (64, 1)).astype(np.float32)], axis=1)
    return table(array, " ")


def shapenetpart_files() -> dict[str, bytes]:
    entries = ["shape_data/02691156/a1", "shape_data/03797390/m1"]
    return {
        f"{PART}/synsetoffset2category.txt": b"Airplane\t02691156\nMug\t03797390\n",
        f"{PART}/train_test_split/shuffled_train_file_list.json": json.dumps(entries).encode(),
        f"{PART}/02691156/a1.txt": part_cloud([0, 1, 2, 3], 40),
        f"{PART}/03797390/m1.txt": part_cloud([36, 37], 41),
    }


FOLDER_KINDS = {  # suffix -> how a valid file of it is made
    ".npy": lambda: npy(cloud(64, 3, 50)),
    ".npz": lambda: npz(points=cloud(64, 3, 51)),
    ".txt": lambda: table(cloud(64, 3, 52)),
    ".xyz": lambda: table(cloud(64, 3, 53), " "),
    ".off": lambda: mesh_bytes("off"),
    ".obj": lambda: mesh_bytes("obj"),
    ".stl": lambda: mesh_bytes("stl"),
    ".ply": lambda: mesh_bytes("ply"),
}


def folder_files(suffix: str) -> dict[str, bytes]:
    return {f"chair/a{suffix}": FOLDER_KINDS[suffix](), "lamp/b.npy": npy(cloud(64, 3, 54))}


def npz_files() -> dict[str, bytes]:
    points = np.stack([cloud(64, 3, 60 + i) for i in range(4)])
    return {"classes.txt": b"chair\nlamp\ntable\n", "train.npz": npz(points=points, labels=np.array([0, 2, 1, 1]))}


TINY_ENCODER = EncoderConfig(dim=8, depth=1, num_heads=2, num_groups=4, group_size=4)


def _torch_bytes(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


def checkpoint_files() -> dict[str, bytes]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    state = {
        "model": model.state_dict(),
        "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
        "epoch": 2,
        "step_in_epoch": 0,
        "global_step": 16,
        "best_metric": 51.5,
        "history": [{"epoch": 1, "acc": 40.0}],
        "rng": [{"torch": torch.get_rng_state()}],
        "config": {"task": "classify", "train": {"epochs": 3}},
    }
    return {"ckpt-last.pth": _torch_bytes(state)}


def encoder_files() -> dict[str, bytes]:
    torch.manual_seed(0)
    encoder = PointEncoder(**TINY_ENCODER.model_dump())
    with tempfile.TemporaryDirectory() as tmp:
        save_encoder(encoder, TINY_ENCODER, Path(tmp) / "encoder.pth", source="fuzz seed")
        return {"encoder.pth": (Path(tmp) / "encoder.pth").read_bytes()}


# ----------------------------------------------------------------------------------------------
# mutation of valid files
# ----------------------------------------------------------------------------------------------
TOKENS = [
    b"nan", b"NaN", b"inf", b"-inf", b"1e39", b"-1e999", b"1e308", b"0x1p3", b"", b" ", b",", b"\t", b"\n",
    b"\r\n", b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xef\xbb\xbf", b"9" * 40, b"-0", b"1,2", b"abc", b"'", b'"',
    b"[", b"{", b"#", b"3 0 1 99999999", b"f 1 2 1000000", b"element vertex 1000000000000",
]  # fmt: skip
INTS = [0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 10**12, 2**63 - 1, 2**64 - 1]


@st.composite
def mutate_bytes(draw, data: bytes, text: bool) -> tuple[bytes, str]:
    """One damaging edit of ``data``; text files also get token and column edits."""
    kinds = ["flip", "truncate", "insert", "delete", "duplicate", "overwrite-int", "empty"]
    if text:
        kinds += ["token", "token", "column", "column"]
    kind = draw(st.sampled_from(kinds))
    n = len(data)
    pos = draw(st.integers(0, n))
    if kind == "flip" and n:
        out = bytearray(data)
        positions = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8))
        for p in positions:
            out[p] ^= draw(st.integers(1, 255))
        return bytes(out), f"flip bytes {positions}"
    if kind == "truncate":
        return data[:pos], f"truncate to {pos} of {n} bytes"
    if kind == "insert":
        chunk = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=64)))
        return data[:pos] + chunk + data[pos:], f"insert {chunk[:20]!r} at {pos}"
    if kind == "delete":
        end = draw(st.integers(pos, n))
        return data[:pos] + data[end:], f"delete bytes {pos}:{end}"
    if kind == "duplicate":
        end = draw(st.integers(pos, min(n, pos + 4096)))
        times = draw(st.integers(1, 4))
        return data[:end] + data[pos:end] * times + data[end:], f"repeat bytes {pos}:{end} x{times}"
    if kind == "overwrite-int":
        value = draw(st.sampled_from(INTS))
        width, order = draw(st.sampled_from([(1, "<"), (2, "<"), (4, "<"), (8, "<"), (4, ">"), (8, ">")]))
        packed = (value % 2 ** (8 * width)).to_bytes(width, "little" if order == "<" else "big")
        return data[:pos] + packed + data[pos + width :], f"overwrite {width}-byte int {value} at {pos}"
    if kind == "empty" or not n:
        return b"", "empty file"
    lines = data.split(b"\n")
    row = draw(st.integers(0, len(lines) - 1))
    words = lines[row].replace(b",", b" ").split()
    if kind == "token":
        token = draw(st.sampled_from(TOKENS))
        if words:
            col = draw(st.integers(0, len(words) - 1))
            words[col] = token
        else:
            words = [token]
        lines[row] = b",".join(words) if b"," in lines[row] else b" ".join(words)
        return b"\n".join(lines), f"line {row}: token -> {token!r}"
    # column: drop or add a column on some lines
    add = draw(st.booleans())
    rows = draw(st.lists(st.integers(0, len(lines) - 1), min_size=1, max_size=4))
    sep = b"," if b"," in lines[row] else b" "
    for r in rows:
        cols = lines[r].split(sep)
        lines[r] = sep.join([*cols, b"0.5"] if add else cols[:-1])
    return b"\n".join(lines), f"{'add' if add else 'drop'} a column on lines {rows}"


TEXT_SUFFIXES = (".txt", ".xyz", ".off", ".obj", ".json", ".pts")


@st.composite
def mutated(draw, seed: dict[str, bytes], mutable: tuple[str, ...]) -> Case:
    files = dict(seed)
    blame = draw(st.sampled_from(mutable))
    data, hows = files[blame], []
    for _ in range(draw(st.integers(1, 3))):
        data, how = draw(mutate_bytes(data, blame.endswith(TEXT_SUFFIXES)))
        hows.append(how)
    files[blame] = data
    return Case(files, blame, f"mutated {blame}: " + "; ".join(hows))


# ----------------------------------------------------------------------------------------------
# structured generation
# ----------------------------------------------------------------------------------------------
SPECIAL = [np.nan, np.inf, -np.inf, 1e39, -1e300, 3.4e38, 1e-45, 0.0, -0.0]
DTYPES = [
    "<f4", "<f8", ">f8", "<f2", "<i8", "<i4", "|u1", "<u8", "|b1", "<c8", "<U4", "|S3", "<M8[s]", "<m8[s]",
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4")],
]  # fmt: skip


@st.composite
def arrays(draw, rows=(0, 96), columns=(0, 8)) -> tuple[np.ndarray, str]:
    """Arrays of many shapes and dtypes, mostly (N, C) floats, with NaN/Inf/huge values sprinkled in."""
    shape_kind = draw(st.sampled_from(["2d", "2d", "2d", "1d", "3d", "0d"]))
    n, c = draw(st.integers(*rows)), draw(st.integers(*columns))
    shape = {"2d": (n, c), "1d": (n,), "3d": (2, n, c), "0d": ()}[shape_kind]
    dtype = np.dtype(draw(st.sampled_from(["<f4", "<f4", "<f8", *DTYPES])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 1.0, 1e-30, 1e20, 1e37, 1e300]))
    base = np.array(rng.standard_normal(shape) * scale, dtype=np.float64)
    specials = draw(st.lists(st.sampled_from(SPECIAL), max_size=3))
    flat = base.reshape(-1)
    for value in specials:
        if flat.size:
            flat[rng.integers(flat.size)] = value
    if draw(st.booleans()) and flat.size:  # all points identical
        base[...] = flat[0]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if dtype.names:
                array = np.zeros(shape, dtype)
            elif dtype.kind in "USMm":
                array = base.astype("<f8").astype(dtype)
            else:
                array = base.astype(dtype)
        except (ValueError, OverflowError, TypeError):
            array = base.astype("<f8")
    return array, f"array {array.dtype} {array.shape} scale {scale:g} specials {specials}"


def npy_header(descr, shape, fortran: bool = False, version: int = 1, payload: bytes = b"\0" * 96) -> bytes:
    header = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}".encode("latin1")
    return npy_raw(header, version) + payload


def npy_raw(header: bytes, version: int = 1) -> bytes:
    length = 8 + (2 if version == 1 else 4) + len(header) + 1
    header = header + b" " * ((64 - length % 64) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header


HUGE_SHAPES = [(10**12, 3), (3, 10**12), (2**62, 2**62), (2**31, 2**31, 3), (10**9, 2048, 3), (-1, 3), (3,), ()]


@st.composite
def npy_files(draw) -> tuple[bytes, str]:
    """A .npy holding a generated array, or a hand-written header that lies."""
    kind = draw(st.sampled_from(["array", "array", "array", "header", "header", "object", "raw-header"]))
    if kind == "array":
        array, how = draw(arrays())
        return npy(array), how
    if kind == "object":
        return npy(np.array([{"a": 1}, None], dtype=object)), "object array (pickled)"
    if kind == "raw-header":
        header = draw(
            st.sampled_from(
                [b"garbage", b"{}", b"{'descr': '<f4'}", b"__import__('os').system('true')", b"{'descr': '<f4', "]
            )
        )
        return npy_raw(header, draw(st.sampled_from([1, 2, 3]))), f"npy header {header!r}"
    descr = draw(st.sampled_from(["<f4", ">f8", "|O", "<U8", "|V12", "<c16", "|b1", "<f4x", 5, [("x", "<f4")]]))
    shape = draw(st.one_of(st.sampled_from(HUGE_SHAPES), st.sampled_from([(4, 3), (1.5, 3), ("a",), (4, -3)])))
    fortran = draw(st.booleans())
    version = draw(st.sampled_from([1, 2, 3]))
    payload = draw(st.sampled_from([b"", b"\0" * 48, b"\0" * 96, b"\1" * 1000]))
    return npy_header(descr, shape, fortran, version, payload), f"npy header descr={descr} shape={shape}"


@st.composite
def npz_members(draw, required: tuple[str, ...] = ("points",)) -> tuple[bytes, str]:
    """A zip of .npy members: generated arrays, lying headers, extra or missing members."""
    kind = draw(st.sampled_from(["arrays", "arrays", "arrays", "lying", "not-npy", "object"]))
    compressed = draw(st.booleans())
    if kind in ("arrays", "object"):
        names = draw(st.lists(st.sampled_from([*required, "labels", "points", "other", "arr_0"]), max_size=3))
        members = {}
        for name in dict.fromkeys(names):
            members[name] = (
                np.array([None, {"x": 1}], dtype=object) if kind == "object" else draw(arrays(rows=(0, 40)))[0]
            )
        return npz(compressed, **members), f"npz {kind} {[(k, v.dtype, v.shape) for k, v in members.items()]}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        name = draw(st.sampled_from(required))
        if kind == "lying":
            content, how = draw(npy_files())
        else:
            content, how = draw(st.binary(max_size=200)), "non-npy bytes"
        zf.writestr(f"{name}.npy", content)
    return buffer.getvalue(), f"npz member {name}.npy: {how}"


@st.composite
def text_tables(draw, columns: int) -> tuple[bytes, str]:
    """Tables with ragged or wrong column counts, odd tokens, separators, encodings and line ends."""
    n = draw(st.integers(0, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    width = draw(st.sampled_from([columns, columns, columns, 0, 1, 2, columns - 1, columns + 1, 12]))
    values = rng.standard_normal((n, max(width, 0)))
    sep = draw(st.sampled_from([",", " ", "\t", ", ", ";", "  "]))
    rows = [sep.join(f"{v:.5f}" for v in row) for row in values]
    for _ in range(draw(st.integers(0, 4))):
        if not rows:
            break
        r = draw(st.integers(0, len(rows) - 1))
        token = draw(
            st.sampled_from(["nan", "inf", "-inf", "1e39", "-1e999", "x", "", "0x10", "1_000", "१२", "nan,nan"])
        )
        cols = rows[r].split(sep)
        cols[draw(st.integers(0, len(cols) - 1))] = token
        if draw(st.booleans()):
            cols = cols[:-1] if draw(st.booleans()) else [*cols, "1.0"]
        rows[r] = sep.join(cols)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(rows) + newline
    prefix = draw(st.sampled_from(["", "", "# comment\n", "\ufeff", "x y z\n"]))
    encoded = (prefix + text).encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"])), "replace")
    if draw(st.booleans()):
        encoded += draw(st.sampled_from([b"\xff\xfe\x00", b"\x80\x81", b"\x00" * 8]))
    return encoded, f"table of {n} rows x {width} ({sep!r}) with odd tokens"


@st.composite
def meshes(draw, kind: str) -> tuple[bytes, str]:
    """Meshes whose vertex/face counts, indices or coordinates are wrong, in the format of ``kind``."""
    nv, nf = draw(st.integers(0, 12)), draw(st.integers(0, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    vertices = rng.standard_normal((nv, 3))
    for value in draw(st.lists(st.sampled_from(SPECIAL), max_size=2)):
        if nv:
            vertices[rng.integers(nv), rng.integers(3)] = value
    if draw(st.booleans()) and nv:
        vertices[:] = vertices[0]  # every vertex identical: zero area
    low, high = draw(st.sampled_from([(0, max(nv, 1)), (-3, nv + 3), (0, 2**31)]))
    faces = rng.integers(low, high, (nf, 3))
    declared_v = draw(st.sampled_from([nv, nv, nv + 5, max(nv - 1, 0), 10**12, 2**31 - 1]))
    declared_f = draw(st.sampled_from([nf, nf, nf + 5, max(nf - 1, 0), 10**12, 2**32 - 1]))
    how = f"{kind} {nv} vertices ({declared_v} declared), {nf} faces ({declared_f} declared), indices {low}..{high}"
    if kind == "off":
        lines = ["OFF", f"{declared_v} {declared_f} 0"]
        lines += [" ".join(f"{v:g}" for v in row) for row in vertices]
        lines += ["3 " + " ".join(str(i) for i in face) for face in faces]
        return ("\n".join(lines) + "\n").encode(), how
    if kind == "obj":
        lines = ["v " + " ".join(f"{v:g}" for v in row) for row in vertices]
        lines += ["f " + " ".join(str(i + 1) for i in face) for face in faces]
        if draw(st.booleans()):
            lines.insert(0, draw(st.sampled_from(["mtllib missing.mtl", "usemtl x", "o thing", "vt 0.5", "g"])))
        return ("\n".join(lines) + "\n").encode(), how
    if kind == "ply":
        binary = draw(st.booleans())
        head = [
            "ply",
            f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
            f"element vertex {declared_v}",
            "property float x",
            "property float y",
            "property float z",
        ]
        if nf or draw(st.booleans()):
            head += [f"element face {declared_f}", "property list uchar int vertex_indices"]
        head.append("end_header")
        body = b""
        if binary:
            with np.errstate(over="ignore"):
                body += vertices.astype("<f4").tobytes()
            body += b"".join(b"\x03" + face.astype("<i4").tobytes() for face in faces)
        else:
            body += "".join(" ".join(f"{v:g}" for v in row) + "\n" for row in vertices).encode()
            body += "".join("3 " + " ".join(map(str, face)) + "\n" for face in faces).encode()
        return ("\n".join(head) + "\n").encode() + body, how + (" binary" if binary else " ascii")
    # stl: binary with a declared triangle count, or ascii
    triangles = rng.standard_normal((nf, 3, 3))
    if nv:
        triangles[..., :] = vertices[rng.integers(0, nv, (nf, 3))]
    if draw(st.booleans()):
        with np.errstate(over="ignore"):
            body = b"".join(np.zeros(3, "<f4").tobytes() + t.astype("<f4").tobytes() + b"\0\0" for t in triangles)
        return b"\0" * 80 + struct.pack("<I", declared_f % 2**32) + body, how + " binary stl"
    lines = ["solid fuzz"]
    for t in triangles:
        lines += ["facet normal 0 0 0", "outer loop", *[f"vertex {a:g} {b:g} {c:g}" for a, b, c in t]]
        lines += ["endloop", "endfacet"]
    lines.append("endsolid fuzz")
    return ("\n".join(lines) + "\n").encode(), how + " ascii stl"


# -- pickles ------------------------------------------------------------------------------------
class _Payload:
    """Pickles as ``func(*args)``: what a hostile pickle would run on load."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def payloads(marker: Path) -> list[tuple[str, object]]:
    """Objects whose unpickling would create ``marker``: each must be refused before it runs."""
    m = os.fspath(marker)
    return [
        ("os.system", _Payload(os.system, f"touch '{m}'")),
        ("builtins.exec", _Payload(exec, f"open({m!r}, 'w').close()")),
        ("builtins.eval", _Payload(eval, f"open({m!r}, 'w').close()")),
        ("builtins.open", _Payload(open, m, "w")),
        ("subprocess.call", _Payload(subprocess.call, ["touch", m])),
        ("methodcaller(touch)", _Payload(operator.methodcaller("touch"), pathlib.Path(m))),
        ("shutil.copyfile", _Payload(shutil.copyfile, "/dev/null", m)),
    ]


def crafted_pickles(marker: Path) -> list[tuple[str, bytes]]:
    """Hand-written opcodes: GLOBAL/STACK_GLOBAL/INST/OBJ forms, extension codes, persistent ids."""
    m = os.fspath(marker).encode()
    cmd = b"touch '" + m + b"'"
    return [
        ("GLOBAL posix.system", b"cposix\nsystem\n(V" + cmd + b"\ntR."),
        ("GLOBAL builtins.eval", b"cbuiltins\neval\n(Vopen('" + m + b"','w').close()\ntR."),
        ("INST os.system", b"(V" + cmd + b"\nios\nsystem\n."),
        ("STACK_GLOBAL os.system", b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd + b"\x85R."),
        ("OBJ builtins.exec", b"\x80\x02(cbuiltins\nexec\nVopen('" + m + b"','w').close()\no."),
        ("EXT1 unregistered", b"\x80\x02\x82\x05."),
        ("PERSID", b"(Pfoo\nt."),
        ("numpy gadget", b"cnumpy.testing._private.utils\nrunstring\n(V" + cmd + b"\n(dtR."),
        ("allowed global reduce", b"cbuiltins\nlist\n(cposix\nsystem\n(V" + cmd + b"\ntRtR."),
        *[(f"dtype flags forged ({flags})", forged_dtype_flags(flags)) for flags in (1, 8, 63, 255)],
    ]


def forged_dtype_flags(flags: int) -> bytes:
    """A float32 array whose pickled dtype state claims ``flags`` (1 = "holds object references"):
    numpy's own unpickling trusts them and would free float data as Python objects."""
    data = pickle.dumps([[np.ones((64, 6), np.float32)], [np.array([0], np.int32)]], protocol=4)
    state = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00"
    return data.replace(state, state[:-1] + bytes([flags]), 1)


def pickled(obj, protocol: int) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


@st.composite
def pickle_values(draw) -> object:
    """Odd Python values: nested containers of arrays, numbers, strings, bytes, None."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=5),
        arrays(rows=(0, 70)).map(lambda pair: pair[0]),
    )
    return draw(st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.tuples(kids, kids), max_leaves=8))


@st.composite
def hostile_pickle(draw, marker: Path, wrap: Callable[[object], object]) -> tuple[bytes, str]:
    """A pickle that would run code: hand-written opcodes, or a payload placed inside a valid structure."""
    if draw(st.booleans()):
        name, data = draw(st.sampled_from(crafted_pickles(marker)))
        return data, f"hostile pickle {name}"
    name, payload = draw(st.sampled_from(payloads(marker)))
    protocol = draw(st.integers(0, 5))
    return pickled(wrap(payload), protocol), f"hostile payload {name} (protocol {protocol}) in a valid structure"


# -- per-target structured strategies ----------------------------------------------------------
@st.composite
def label_values(draw, ways: int) -> object:
    return draw(
        st.sampled_from(
            [
                np.array([0], np.int32),
                np.array([ways - 1], np.int64),
                np.array([ways], np.int32),
                np.array([-1], np.int32),
                np.array([0, 1], np.int32),
                np.array([0.5]),
                np.array(["0"]),
                1,
                -3,
                2**70,
                1.0,
                "chair",
                None,
                np.int64(1),
                np.array(1, np.uint8),
            ]
        )
    )


@st.composite
def cloud_values(draw, columns: int) -> object:
    if draw(st.integers(0, 3)):
        array, _ = draw(arrays(rows=(0, 70), columns=(columns - 2, columns + 2)))
        return array
    return draw(pickle_values())


@st.composite
def dat_cases(draw, marker: Path) -> Case:
    base = modelnet_files(with_cache=True)
    key = f"{MN}/modelnet10_train_8192pts_fps.dat"
    kind = draw(st.sampled_from(["hostile", "structure", "hostile", "structure", "values"]))
    if kind == "hostile":
        data, how = draw(hostile_pickle(marker, lambda p: [[cloud(64, 6, 1), p], [np.array([0]), np.array([1])]]))
    elif kind == "values":
        data, how = pickled(draw(pickle_values()), draw(st.integers(0, 5))), "pickle of odd values"
    else:
        n = draw(st.integers(0, 4))
        clouds = [draw(cloud_values(6)) for _ in range(n)]
        labels = [draw(label_values(2)) for _ in range(draw(st.sampled_from([n, n, n, n + 1, max(n - 1, 0)])))]
        shape = draw(st.sampled_from(["list", "list", "tuple", "dict", "triple"]))
        obj = {"list": [clouds, labels], "tuple": (clouds, labels), "dict": {"x": clouds}, "triple": [clouds] * 3}
        data, how = pickled(obj[shape], draw(st.integers(0, 5))), f"{shape} of {n} clouds, {len(labels)} labels"
    return Case({**base, key: data}, key, how)


@st.composite
def fewshot_cases(draw, marker: Path) -> Case:
    key = "ModelNetFewshot/2way1shot/0.pkl"
    kind = draw(st.sampled_from(["hostile", "structure", "hostile", "structure", "values"]))
    if kind == "hostile":
        data, how = draw(hostile_pickle(marker, lambda p: {"train": [(p, 0, 8)], "test": []}))
    elif kind == "values":
        data, how = pickled(draw(pickle_values()), draw(st.integers(0, 5))), "pickle of odd values"
    else:
        entries = []
        for _ in range(draw(st.integers(0, 4))):
            entry = (draw(cloud_values(6)), draw(label_values(2)), draw(label_values(40)))
            if not draw(st.integers(0, 5)):
                entry = entry[: draw(st.integers(0, 2))]
            entries.append(entry)
        holder = draw(st.sampled_from(["dict", "dict", "dict-tuple", "list", "missing"]))
        obj = {
            "dict": {"train": entries, "test": []},
            "dict-tuple": {"train": tuple(entries)},
            "list": [entries],
            "missing": {"test": entries},
        }[holder]
        data, how = pickled(obj, draw(st.integers(0, 5))), f"{holder} with {len(entries)} entries"
    return Case({key: data}, key, how)


@st.composite
def h5_dataset(draw, name: str) -> tuple[Callable[[h5py.File], None], str]:
    kind = draw(
        st.sampled_from(["array", "array", "array", "huge", "group", "missing", "link", "scalar", "vlen", "empty"])
    )
    if kind == "array":
        array, how = draw(arrays(rows=(0, 70)))
        if array.dtype.kind in "OMm" or (array.dtype.kind == "U"):
            array = array.astype("S8") if array.dtype.kind == "U" else array.astype("<i8")
        compression = draw(st.sampled_from([None, None, "gzip", "lzf"]))
        if array.ndim == 0:
            compression = None

        def write(f, array=array, compression=compression):
            f.create_dataset(name, data=array, compression=compression)

        return write, f"{name}: {how} compression={compression}"
    if kind == "huge":
        shape = draw(st.sampled_from([(10**12, 3), (10**9, 2048, 3), (2**40,), (10**6, 10**6, 3)]))
        dtype = draw(st.sampled_from(["<f4", "<f8", "|u1"]))
        chunks = tuple(min(s, 64) for s in shape)
        return lambda f: f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks), f"{name}: {shape} declared"
    if kind == "group":
        return lambda f: f.create_group(name), f"{name}: a group"
    if kind == "missing":
        return lambda f: None, f"{name}: missing"
    if kind == "link":
        target = draw(st.sampled_from(["external", "soft"]))

        def link(f, target=target):
            f[name] = h5py.ExternalLink("/nonexistent/file.h5", "/x") if target == "external" else h5py.SoftLink("/no")

        return link, f"{name}: dangling {target} link"
    if kind == "scalar":
        return lambda f: f.create_dataset(name, data=3.5), f"{name}: scalar"
    if kind == "vlen":
        return (
            lambda f: f.create_dataset(name, data=["a", "bc"], dtype=h5py.string_dtype()),
            f"{name}: variable-length strings",
        )
    return lambda f: f.create_dataset(name, data=h5py.Empty("f4")), f"{name}: empty (null dataspace)"


@st.composite
def scanobjectnn_cases(draw) -> Case:
    data, how_d = draw(h5_dataset("data"))
    label, how_l = draw(h5_dataset("label"))
    if draw(st.booleans()):  # keep one of the two valid
        points = np.stack([cloud(64, 3, 30 + i) for i in range(4)])
        if draw(st.booleans()):
            data, how_d = (lambda f: f.create_dataset("data", data=points)), "data: valid"
        else:
            labels = np.array([0, 3, 14, draw(st.sampled_from([7, 15, -1, 255]))])
            label, how_l = (lambda f: f.create_dataset("label", data=labels)), f"label: {labels.tolist()}"
    return Case({SCAN: h5({"data": data, "label": label})}, SCAN, f"{how_d}; {how_l}")


@st.composite
def split_lines(draw, valid: list[str]) -> tuple[bytes, str]:
    lines = list(draw(st.lists(st.sampled_from(valid), max_size=4)))
    extras = ["", "no-dash.npy", "0269-x.txt", "../../etc/passwd", "02691156-missing.npy", "-.npy", "x" * 300]
    lines += draw(st.lists(st.sampled_from(extras), max_size=2))
    body = "\n".join(lines).encode()
    if draw(st.booleans()):
        body += draw(st.sampled_from([b"\n\xff\xfe-a.npy", b"\n02691156-\x80.npy", b"\x00"]))
    return body, f"split list {lines}"


@st.composite
def shapenet55_cases(draw) -> Case:
    files = shapenet55_files()
    names = [k.split("/")[-1] for k in files if k.startswith("shapenet_pc/")]
    if draw(st.booleans()):
        key = draw(st.sampled_from([k for k in files if k.endswith(".npy")]))
        files[key], how = draw(npy_files())
    else:
        key = draw(st.sampled_from(["ShapeNet-55/train.txt", "ShapeNet-55/test.txt"]))
        files[key], how = draw(split_lines(names))
    return Case(files, key, how)


@st.composite
def modelnet_txt_cases(draw) -> Case:
    files = modelnet_files(with_cache=False)
    kind = draw(st.sampled_from(["cloud", "cloud", "cloud", "names", "split"]))
    if kind == "cloud":
        key = draw(st.sampled_from([k for k in files if "_000" in k]))
        files[key], how = draw(text_tables(6))
    elif kind == "names":
        key = f"{MN}/modelnet10_shape_names.txt"
        names = draw(st.lists(st.sampled_from(["chair", "night_stand", "night", "", "chair "]), max_size=3))
        files[key], how = "\n".join(names).encode(), f"class names {names}"
    else:
        key = f"{MN}/modelnet10_train.txt"
        lines = draw(st.lists(st.sampled_from(["chair_0001", "chair", "_0001", "sofa_0001", "chair_9999"]), max_size=3))
        files[key], how = "\n".join(lines).encode(), f"split lines {lines}"
    return Case(files, key, how)


@st.composite
def json_values(draw) -> object:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.sampled_from(["shape_data/02691156/a1"])
    )
    return draw(st.recursive(leaves, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(), kids)))


@st.composite
def shapenetpart_cases(draw) -> Case:
    files = shapenetpart_files()
    kind = draw(st.sampled_from(["cloud", "cloud", "parts", "json", "categories"]))
    split = f"{PART}/train_test_split/shuffled_train_file_list.json"
    if kind == "cloud":
        key = f"{PART}/02691156/a1.txt"
        files[key], how = draw(text_tables(7))
    elif kind == "parts":
        key = f"{PART}/03797390/m1.txt"
        parts = draw(st.lists(st.sampled_from([36, 37, 0, 49, 50, -1, 36.5, 1e10]), min_size=1, max_size=3))
        array = np.concatenate([cloud(64, 6, 3), np.resize(np.array(parts, np.float64), (64, 1))], axis=1)
        files[key], how = table(array, " "), f"part ids {parts}"
    elif kind == "json":
        key = split
        value = draw(json_values())
        files[key], how = json.dumps(value).encode(), f"split list JSON {str(value)[:60]}"
    else:
        key = f"{PART}/synsetoffset2category.txt"
        lines = draw(
            st.lists(st.sampled_from(["Airplane\t02691156", "Mug 03797390", "Plane 1", "Airplane", ""]), max_size=3)
        )
        files[key], how = "\n".join(lines).encode(), f"categories {lines}"
    return Case(files, key, how)


ODD_NAMES = ["\udcff\udcfe", "caf\udce9", "x\udc80y", "normal", "sp ace", "ü", "-dash", "CAPS"]


@st.composite
def folder_cases(draw, suffix: str) -> Case:
    files = folder_files(suffix)
    kind = suffix.lstrip(".")
    if kind == "npy":
        data, how = draw(npy_files())
    elif kind == "npz":
        data, how = draw(npz_members())
    elif kind in ("txt", "xyz"):
        data, how = draw(text_tables(3))
    else:
        data, how = draw(meshes(kind))
    folder = draw(st.sampled_from(["chair", *ODD_NAMES]))
    name = draw(st.sampled_from(["a", *ODD_NAMES]))
    up = suffix.upper() if draw(st.integers(0, 5)) == 0 else suffix
    key = f"{folder}/{name}{up}"
    del files[f"chair/a{suffix}"]
    files[key] = data
    return Case(files, key, how + f" named {key!r}")


@st.composite
def npz_dataset_cases(draw) -> Case:
    files = npz_files()
    kind = draw(st.sampled_from(["arrays", "arrays", "arrays", "members", "classes"]))
    if kind == "classes":
        key = "classes.txt"
        names = draw(st.lists(st.sampled_from(["chair", "lamp", "", " ", "\udcff"]), max_size=4))
        files[key], how = "\n".join(names).encode("utf-8", "surrogateescape"), f"classes {names}"
    elif kind == "members":
        key = "train.npz"
        files[key], how = draw(npz_members(("points", "labels")))
    else:
        key = "train.npz"
        points, how_p = draw(st.one_of(arrays(rows=(0, 70), columns=(2, 4)), st.just((None, "points missing"))))
        if points is not None and points.ndim == 2 and draw(st.booleans()):
            copies = draw(st.integers(0, 4))  # (S, P, C) of identical samples, maybe none
            points = np.stack([points] * copies) if copies else np.zeros((0, *points.shape), points.dtype)
        n = len(points) if points is not None and points.ndim else 0
        labels = draw(
            st.sampled_from(
                [
                    np.arange(n) % 3,
                    np.full(n, 3),
                    np.full(n, -1),
                    np.arange(n + 1) % 3,
                    (np.arange(n) % 3).astype(np.float32) + 0.5,
                    (np.arange(n) % 3).astype(np.float64),
                    (np.arange(n) % 3).reshape(-1, 1),
                    np.zeros((n, 2)),
                    np.array([f"{i}" for i in range(n)]),
                    np.full(n, np.nan),
                    None,
                ]
            )
        )
        members = {k: v for k, v in (("points", points), ("labels", labels)) if v is not None}
        files[key] = npz(False, **members)
        how = f"points: {how_p}; labels {None if labels is None else (labels.dtype, labels.shape)}"
    return Case(files, key, how)


@st.composite
def tensors(draw) -> torch.Tensor:
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.float64, torch.int64, torch.bool, torch.uint8]))
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    values = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 2**31))))
    if draw(st.booleans()) and values.numel():
        values.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), 1e30]))
    return values.to(dtype)


@st.composite
def checkpoint_values(draw) -> object:
    leaves = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=4), tensors())
    return draw(
        st.recursive(
            leaves,
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
            max_leaves=8,
        )
    )


def replace_in_zip(data: bytes, suffix: str, content: bytes | None) -> bytes:
    """The torch zip ``data`` with its member ending in ``suffix`` replaced (or removed when ``content`` is None)."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith(suffix):
                if content is not None:
                    dst.writestr(info, content)
            else:
                dst.writestr(info, src.read(info))
    return out.getvalue()


@st.composite
def checkpoint_cases(draw, marker: Path, key: str) -> Case:
    """Structures torch.load(weights_only) may meet: odd values, hostile objects, broken zip members."""
    seed = (encoder_files() if key == "encoder.pth" else checkpoint_files())[key]
    kind = draw(st.sampled_from(["hostile", "values", "hostile-zip", "member", "values", "legacy", "plain-pickle"]))
    if kind == "values":
        data, how = _torch_bytes(draw(checkpoint_values())), "torch.save of odd values"
    elif kind == "hostile":
        name, payload = draw(st.sampled_from(payloads(marker)))
        data, how = _torch_bytes({"model": payload, "epoch": 1}), f"torch.save of hostile {name}"
    elif kind == "hostile-zip":
        name, body = draw(st.sampled_from(crafted_pickles(marker)))
        data, how = replace_in_zip(seed, "data.pkl", body), f"data.pkl replaced by hostile {name}"
    elif kind == "member":
        member = draw(st.sampled_from(["data.pkl", "data/0", "version", "byteorder", ".data/serialization_id"]))
        content = draw(st.one_of(st.none(), st.binary(max_size=64)))
        data, how = replace_in_zip(seed, member, content), f"zip member {member} -> {content!r:.30}"
    elif kind == "legacy":
        name, payload = draw(st.sampled_from(payloads(marker)))
        value = draw(st.sampled_from([payload, {"model": torch.ones(2)}]))
        data = _torch_bytes(value, _use_new_zipfile_serialization=False)
        how = f"legacy (non-zip) torch format with {'hostile ' + name if value is payload else 'weights'}"
    else:
        name, payload = draw(st.sampled_from(payloads(marker)))
        data, how = pickled({"model": payload}, draw(st.integers(0, 5))), f"plain pickle with hostile {name}"
    return Case({key: data}, key, how)


@st.composite
def encoder_cases(draw, marker: Path) -> Case:
    """Encoder checkpoints whose format, config or weights disagree, or whose config is enormous."""
    if draw(st.booleans()):
        return draw(checkpoint_cases(marker, "encoder.pth"))
    encoder = PointEncoder(**TINY_ENCODER.model_dump())
    weights = dict(encoder.state_dict())
    config = TINY_ENCODER.model_dump()
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["config", "config", "weight", "drop", "extra", "layout"]))
        if what == "config":
            k = draw(st.sampled_from([*config, "unknown"]))
            v = draw(st.sampled_from([0, -1, 3, 7, 10**6, 10**9, 2**40, 0.5, "x", None, [1], 1e300]))
            config[k] = v
            edits.append(f"config.{k}={v}")
        elif what == "weight":
            k = draw(st.sampled_from(sorted(weights)))
            weights[k] = draw(st.one_of(tensors(), st.sampled_from([None, 3, "w", [1.0]])))
            edits.append(f"weight {k} replaced")
        elif what == "drop":
            k = draw(st.sampled_from(sorted(weights)))
            weights.pop(k, None)
            edits.append(f"weight {k} dropped")
        elif what == "extra":
            weights[draw(st.sampled_from(["blocks.blocks.7.attn.qkv.weight", "x", ""]))] = torch.zeros(2)
            edits.append("extra weight")
        else:
            edits.append("layout")
    layout = draw(st.sampled_from(["ours", "ours", "pretrain", "official", "bare", "config-not-dict"]))
    state = {
        "ours": {"format": "act3d-encoder", "config": config, "state_dict": weights, "source": ""},
        "pretrain": {
            "config": {"task": "pretrain", "model": config},
            "model": {f"encoder.{k}": v for k, v in weights.items()},
        },
        "official": {"base_model": {f"module.MAE_encoder.{k}": v for k, v in weights.items()}},
        "bare": weights,
        "config-not-dict": {"config": [config], "model": weights},
    }[layout]
    return Case({"encoder.pth": _torch_bytes(state)}, "encoder.pth", f"{layout}: {', '.join(edits)}")


# ----------------------------------------------------------------------------------------------
# the targets
# ----------------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    what: str  # the reader, in words (for the table)
    seed: Callable[[], dict[str, bytes]]
    mutable: tuple[str, ...]
    load: Callable[[Path], None]
    structured: Callable[[Path], st.SearchStrategy[Case]]  # marker -> strategy
    _seed_cache: dict[str, bytes] | None = field(default=None, repr=False)

    def seed_files(self) -> dict[str, bytes]:
        if self._seed_cache is None:
            self._seed_cache = self.seed()
        return self._seed_cache

    def cases(self, marker: Path) -> st.SearchStrategy[Case]:
        return st.one_of(mutated(self.seed_files(), self.mutable), self.structured(marker))


def _dataset_loader(name: str, split: str, **options) -> Callable[[Path], None]:
    return lambda root: check_dataset(build_dataset(name, os.fspath(root), split, NPOINTS, **options))


def _load_checkpoint(root: Path) -> None:
    state = load_checkpoint(root / "ckpt-last.pth")
    if not isinstance(state, dict):
        raise BadOutputError(f"load_checkpoint returned a {type(state).__name__}")


def _load_encoder(root: Path) -> None:
    encoder = load_encoder(root / "encoder.pth")
    if not isinstance(encoder, PointEncoder):
        raise BadOutputError(f"load_encoder returned a {type(encoder).__name__}")


def _folder_target(suffix: str) -> Target:
    return Target(
        f"folder{suffix}",
        f"FolderDataset, {suffix} files",
        lambda: folder_files(suffix),
        (f"chair/a{suffix}",),
        _dataset_loader("folder", None),
        lambda marker: folder_cases(suffix),
    )


TARGETS: list[Target] = [
    Target(
        "shapenet55",
        "ShapeNet-55 (.npy clouds + split lists)",
        shapenet55_files,
        ("shapenet_pc/02691156-a1.npy", "shapenet_pc/03001627-c1.npy", "ShapeNet-55/train.txt"),
        _dataset_loader("shapenet55", "all"),
        lambda marker: shapenet55_cases(),
    ),
    Target(
        "modelnet-txt",
        "ModelNet (text clouds + lists)",
        lambda: modelnet_files(with_cache=False),
        (f"{MN}/chair/chair_0001.txt", f"{MN}/modelnet10_train.txt", f"{MN}/modelnet10_shape_names.txt"),
        _dataset_loader("modelnet10", "train", use_normals=True),
        lambda marker: modelnet_txt_cases(),
    ),
    Target(
        "modelnet-dat",
        "ModelNet .dat cache (restricted pickle)",
        lambda: modelnet_files(with_cache=True),
        (f"{MN}/modelnet10_train_8192pts_fps.dat",),
        _dataset_loader("modelnet10", "train", use_normals=True),
        dat_cases,
    ),
    Target(
        "fewshot-pkl",
        "ModelNet few-shot .pkl (restricted pickle)",
        fewshot_files,
        ("ModelNetFewshot/2way1shot/0.pkl",),
        _dataset_loader("modelnet_fewshot", "train", way=2, shot=1, fold=0, use_normals=True),
        fewshot_cases,
    ),
    Target(
        "scanobjectnn-h5",
        "ScanObjectNN HDF5",
        scanobjectnn_files,
        (SCAN,),
        _dataset_loader("scanobjectnn", "train", variant="OBJ_BG"),
        lambda marker: scanobjectnn_cases(),
    ),
    Target(
        "shapenetpart",
        "ShapeNetPart (text + JSON lists)",
        shapenetpart_files,
        (
            f"{PART}/02691156/a1.txt",
            f"{PART}/train_test_split/shuffled_train_file_list.json",
            f"{PART}/synsetoffset2category.txt",
        ),
        _dataset_loader("shapenetpart", "train", use_normals=True),
        lambda marker: shapenetpart_cases(),
    ),
    *[_folder_target(suffix) for suffix in FOLDER_KINDS],
    Target(
        "npz",
        "NpzDataset (one .npz per split)",
        npz_files,
        ("train.npz", "classes.txt"),
        _dataset_loader("npz", "train"),
        lambda marker: npz_dataset_cases(),
    ),
    Target(
        "checkpoint",
        "engine.checkpoint.load_checkpoint",
        checkpoint_files,
        ("ckpt-last.pth",),
        _load_checkpoint,
        lambda marker: checkpoint_cases(marker, "ckpt-last.pth"),
    ),
    Target(
        "encoder",
        "models.encoder_io.load_encoder",
        encoder_files,
        ("encoder.pth",),
        _load_encoder,
        encoder_cases,
    ),
]
TARGETS_BY_NAME = {t.name: t for t in TARGETS}


# ----------------------------------------------------------------------------------------------
# the campaign
# ----------------------------------------------------------------------------------------------
@dataclass
class Report:
    """Outcome counts per target, and the failing inputs (kept on disk when ``keep`` is set)."""

    counts: dict[str, Counter] = field(default_factory=dict)
    sources: dict[str, Counter] = field(default_factory=dict)  # mutated / structured / hostile pickle
    failures: list[tuple[str, Case, Outcome]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def table(self) -> str:
        kinds = list(OK) + [k for k in FAILURES]
        head = "| reader | inputs | " + " | ".join(kinds) + " | slowest input (s) |"
        lines = [head, "|---|" + "---:|" * (len(kinds) + 2)]
        total: Counter = Counter()
        for name, counts in self.counts.items():
            total += counts
            cells = " | ".join(str(counts.get(k, 0)) for k in kinds)
            lines.append(f"| {name} | {sum(counts.values())} | {cells} | {self.slowest.get(name, 0):.2f} |")
        cells = " | ".join(str(total.get(k, 0)) for k in kinds)
        slowest = max(self.slowest.values(), default=0.0)
        lines.append(f"| **all** | **{sum(total.values())}** | {cells} | {slowest:.2f} |")
        return "\n".join(lines)

    def progress(self, name: str) -> str:
        counts = self.counts[name]
        outcomes = "  ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        return f"{name:18s} {sum(counts.values()):5d} inputs in {self.seconds.get(name, 0.0):6.1f} s  {outcomes}"

    def sources_table(self) -> str:
        kinds = ["mutated", "structured", "hostile"]
        lines = ["| reader | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
        total: Counter = Counter()
        for name, counts in self.sources.items():
            total += counts
            lines.append(f"| {name} | " + " | ".join(str(counts.get(k, 0)) for k in kinds) + " |")
        lines.append("| **all** | " + " | ".join(str(total.get(k, 0)) for k in kinds) + " |")
        return "\n".join(lines)


def source_of(case: Case) -> str:
    """How an input was made: by mutating a valid file, by structured generation, or as a hostile pickle."""
    if case.how.startswith("mutated "):
        return "mutated"
    return "hostile" if "hostile" in case.how or "dtype flags forged" in case.how else "structured"


def fuzz_target(
    target: Target,
    inputs: int,
    workdir: Path,
    report: Report,
    seed: int = 0,
    timeout: float = 10.0,
    raise_on_failure: bool = False,
    keep: Path | None = None,
) -> None:
    """Run ``inputs`` generated inputs through ``target``, adding to ``report``.

    With ``raise_on_failure`` a failing input raises AssertionError (hypothesis then shrinks it), as in
    the test suite; otherwise the campaign goes on and failures are collected.
    """
    marker = workdir / "CODE-EXECUTED-MARKER"
    counts = report.counts.setdefault(target.name, Counter())
    counter = iter(range(10**9))
    strategy = target.cases(marker)
    tic = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(
        max_examples=inputs,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink] if raise_on_failure else [Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(st.data())
    def one_input(data) -> None:
        case = data.draw(strategy, label="case")
        root = workdir / f"{target.name}-{next(counter)}"
        start = time.perf_counter()
        outcome = run_case(target, case, root, marker, timeout)
        report.slowest[target.name] = max(report.slowest.get(target.name, 0.0), time.perf_counter() - start)
        counts[outcome.kind] += 1
        report.sources.setdefault(target.name, Counter())[source_of(case)] += 1
        if outcome.kind in FAILURES:
            report.failures.append((target.name, case, outcome))
            if keep is not None:
                kept = keep / root.name
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(root, kept, symlinks=True)
                (kept / "OUTCOME.txt").write_text(
                    f"{outcome.kind}: {outcome.detail}\n{case.how}\n", errors="backslashreplace"
                )
        shutil.rmtree(root, ignore_errors=True)
        if raise_on_failure and outcome.kind in FAILURES:
            raise AssertionError(f"{target.name}: {outcome.kind}: {outcome.detail}\ninput: {case.how!r}")

    one_input()
    report.seconds[target.name] = report.seconds.get(target.name, 0.0) + time.perf_counter() - tic


def hostile_corpus(marker: Path) -> list[tuple[str, str, bytes, Callable[[Path], object]]]:
    """(label, file name, bytes, reader) for every code-running payload in every reader of pickled data.

    All must be refused with DataError / CheckpointError and none may create ``marker``.
    """
    crafted = [(n, d) for n, d in crafted_pickles(marker) if not n.startswith("dtype flags")]  # those load
    built = [
        (f"{name}, protocol {p}", pickle.dumps(obj, protocol=p)) for name, obj in payloads(marker) for p in range(6)
    ]
    nested = [
        (f"{name} in a few-shot fold", pickle.dumps({"train": [(obj, 0, 8)], "test": []}))
        for name, obj in payloads(marker)
    ]
    corpus = []
    for label, data in [*crafted, *built, *nested]:
        corpus.append((f"pickle: {label}", "x.pkl", data, safe_pickle_load))
        corpus.append((f"as checkpoint: {label}", "x.pth", data, load_checkpoint))
    for name, obj in payloads(marker):
        legacy = _torch_bytes({"model": obj}, _use_new_zipfile_serialization=False)
        corpus += [
            (f"torch.save: {name}", "t.pth", _torch_bytes({"model": obj}), load_checkpoint),
            (f"legacy torch: {name}", "l.pth", legacy, load_checkpoint),
            (f"encoder: {name}", "e.pth", _torch_bytes({"state_dict": obj}), load_encoder),
            (f"object .npy: {name}", "o.npy", npy(np.array([obj, 1], dtype=object)), read_point_file),
            (f"object .npz: {name}", "o.npz", npz(points=np.array([obj], dtype=object)), read_point_file),
        ]
    return corpus


def run_hostile_corpus(workdir: Path, report: Report, timeout: float = 10.0) -> None:
    """Every entry of :func:`hostile_corpus` through :func:`run_case`, counted as reader "hostile corpus"."""
    marker = workdir / "CODE-EXECUTED-MARKER"
    counts = report.counts.setdefault("hostile corpus", Counter())
    report.sources.setdefault("hostile corpus", Counter())
    tic = time.perf_counter()
    for i, (label, name, data, reader) in enumerate(hostile_corpus(marker)):
        target = Target("hostile corpus", label, dict, (), lambda root, r=reader, n=name: r(root / n), None)
        case = Case({name: data}, name, label)
        root = workdir / f"hostile-{i}"
        start = time.perf_counter()
        outcome = run_case(target, case, root, marker, timeout)
        report.slowest["hostile corpus"] = max(report.slowest.get("hostile corpus", 0.0), time.perf_counter() - start)
        if outcome.kind == "loaded":  # a hostile input must never load
            outcome = Outcome("BAD-OUTPUT", "a hostile pickle loaded")
        counts[outcome.kind] += 1
        report.sources["hostile corpus"]["hostile"] += 1
        if outcome.kind in FAILURES:
            report.failures.append(("hostile corpus", case, outcome))
        shutil.rmtree(root, ignore_errors=True)
    report.seconds["hostile corpus"] = time.perf_counter() - tic


def quiet_libraries() -> None:
    logging.getLogger("trimesh").setLevel(logging.CRITICAL)
    logging.getLogger("h5py").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--inputs", type=int, default=5000, help="generated inputs, split evenly over readers (+ the hostile corpus)"
    )
    parser.add_argument(
        "--only", help="comma-separated readers (default: all, plus the hostile corpus): " + ",".join(TARGETS_BY_NAME)
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per input")
    parser.add_argument("--keep", default="fuzz-failures", help="folder for failing inputs (reproduce from there)")
    args = parser.parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(1)
    targets = [TARGETS_BY_NAME[n] for n in args.only.split(",")] if args.only else TARGETS
    per_target = [args.inputs // len(targets) + (i < args.inputs % len(targets)) for i in range(len(targets))]
    report = Report()
    keep = Path(args.keep)
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="act3d-fuzz-") as tmp:
        for target, n in zip(targets, per_target, strict=True):
            fuzz_target(target, n, Path(tmp), report, seed=args.seed, timeout=args.timeout, keep=keep)
            print(report.progress(target.name), flush=True)
        if not args.only:
            run_hostile_corpus(Path(tmp), report, args.timeout)
            print(report.progress("hostile corpus"), flush=True)
    print()
    print(f"{report.total} inputs in {time.perf_counter() - tic:.0f} s (seed {args.seed}, timeout {args.timeout} s)")
    print(report.table())
    print("\nhow the inputs were made:\n")
    print(report.sources_table())
    if report.failures:
        print(f"\n{len(report.failures)} failing inputs (kept in {keep}/):")
        for name, case, outcome in report.failures[:40]:
            print(f"  {name}: {outcome.kind}: {outcome.detail[:160]!r}\n      input: {case.how[:160]!r}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
