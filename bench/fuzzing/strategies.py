"""Per-target structured strategies: the generated (not mutated) half of each target's inputs."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from hypothesis import strategies as st

from act3d.models.point_transformer import PointEncoder

from .cases import Case
from .structured import (
    arrays,
    crafted_pickles,
    hostile_pickle,
    meshes,
    npy_files,
    npz_members,
    payloads,
    pickle_values,
    pickled,
    text_tables,
)
from .valid_files import (
    MN,
    PART,
    SCAN,
    TINY_ENCODER,
    _torch_bytes,
    checkpoint_files,
    cloud,
    encoder_files,
    folder_files,
    h5,
    modelnet_files,
    npz,
    npz_files,
    shapenet55_files,
    shapenetpart_files,
    table,
)


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
