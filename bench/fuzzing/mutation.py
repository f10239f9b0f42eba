"""Mutation of valid files: byte edits for every file, token and column edits for text files."""

from __future__ import annotations

from hypothesis import strategies as st

from .cases import Case

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
