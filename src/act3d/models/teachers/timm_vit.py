"""Trunks from timm ViTs: the paper's ``vit_base_patch16_384`` and any other ViT-style timm model, with
weights from a local file, or from timm's download when ``ACT3D_ALLOW_DOWNLOAD=1``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import nn

from act3d.errors import CheckpointError, ConfigError
from act3d.models.teachers._package import sha256
from act3d.models.teachers.frozen import RANDOM, FrozenTeacher

ALLOW_DOWNLOAD_ENV = "ACT3D_ALLOW_DOWNLOAD"
"""Set to ``1`` to let timm download pretrained weights when no local file is given."""
TIMM_PRESETS = (
    "vit_base_patch16_384",
    "vit_small_patch16_224",
    "vit_tiny_patch16_224",
    "deit_small_patch16_224",
    "vit_base_patch16_clip_224",
    "vit_small_patch14_dinov2",
)
"""The timm ViTs of the paper's configs (any other timm ViT name works too)."""
_TRUNK_PREFIXES = ("blocks.", "norm.")


def _names() -> list[str]:
    from act3d.models.teachers import teacher_names  # the registry lives in the package

    return teacher_names()


def timm_model(name: str, *, skip_init: bool = False) -> nn.Module:
    """A timm model without classifier; ``skip_init`` builds it on the meta device (no random init)
    when every tensor it holds is in its state dict, i.e. when loading weights will fill it all."""
    import timm  # a 3 s import: only when a teacher is built

    if not timm.is_model(name):
        raise ConfigError(
            f"unknown teacher {name!r}: not a preset ({', '.join(_names())}) nor a timm model name; "
            "'random:<name>' and 'bert:<model dir>' are also accepted"
        )
    if skip_init:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, num_classes=0)
        if set(dict(model.named_buffers())) <= set(model.state_dict()):
            return model
    return timm.create_model(name, pretrained=False, num_classes=0)


def vit_trunk(model: nn.Module, name: str, source: str, pretrained: bool) -> FrozenTeacher:
    """The ``blocks`` and ``norm`` of a timm ViT-style model as a :class:`FrozenTeacher`."""
    blocks, norm = getattr(model, "blocks", None), getattr(model, "norm", None)
    if not isinstance(blocks, nn.Sequential | nn.ModuleList) or not isinstance(norm, nn.Module):
        raise ConfigError(f"timm model {name!r} is not ViT-style: a teacher needs its .blocks and .norm")
    return FrozenTeacher(blocks, norm, width=model.embed_dim, source=source, pretrained=pretrained)


def timm_teacher(name: str, weights: str | os.PathLike[str] | None) -> FrozenTeacher:
    if weights == RANDOM:
        return vit_trunk(timm_model(name), name, f"RANDOM WEIGHTS (ablation): {name}", pretrained=False)
    if weights is None:
        return _downloaded_timm_teacher(name)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    source = f"{name} from {path} (sha256 {sha256(path)[:16]})"
    if path.suffix == ".npz":
        model = timm_model(name)
        if not hasattr(model, "load_pretrained"):
            raise ConfigError(f"{path}: timm cannot read .npz checkpoints into {name!r}; convert to .pth")
        try:
            model.load_pretrained(str(path))
        except (KeyError, ValueError, RuntimeError, OSError) as err:
            raise CheckpointError(f"{path}: not a JAX/big_vision checkpoint of {name} ({err!r})") from err
        return vit_trunk(model, name, source, pretrained=True)
    model = timm_model(name, skip_init=True)
    state_dict = _read_state_dict(path)
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        try:
            state_dict = filter_fn(state_dict, model)
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{path}: cannot convert to {name} keys ({err!r})") from err
    teacher = vit_trunk(model, name, source, pretrained=True)
    _load_trunk(teacher, state_dict, path, name)
    return teacher


def _downloaded_timm_teacher(name: str) -> FrozenTeacher:
    if os.environ.get(ALLOW_DOWNLOAD_ENV) != "1":
        raise ConfigError(
            f"teacher {name!r} needs pretrained weights and downloads are off: pass a local file, "
            f"build_teacher({name!r}, weights='path/to/weights.safetensors') (.safetensors, .pth/.pt/.bin "
            f"or an original JAX .npz), or set {ALLOW_DOWNLOAD_ENV}=1 to let timm download them, or use an "
            f"offline teacher ({', '.join(_names()[:2])})"
        )
    import timm

    model = timm.create_model(name, pretrained=True, num_classes=0)
    origin = model.pretrained_cfg.get("hf_hub_id") or model.pretrained_cfg.get("url")
    return vit_trunk(model, name, f"{name} downloaded by timm ({origin})", pretrained=True)


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
