"""Structured generation: arrays, ``.npy`` / ``.npz`` files, text tables and meshes that lie, and pickles
of odd values or that would run code."""

from __future__ import annotations

import io
import operator
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from .valid_files import npy, npz

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
