"""Saving and loading pretrained point encoders, ours and the official ACT / Point-MAE releases.

Our format is a ``weights_only``-safe dict ``{"format": "act3d-encoder", "config": {...},
"state_dict": {...}, "source": str}``. Official checkpoints hold ``base_model`` (or ``model``) with
keys such as ``module.ACT_encoder.encoder.first_conv.0.weight``; :func:`convert_official_keys`
renames them (see docs/checkpoints.md for the table) and every unknown or missing key is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from act3d.engine.checkpoint import load_checkpoint, save_checkpoint
from act3d.engine.config import EncoderConfig
from act3d.errors import CheckpointError
from act3d.models.point_transformer import PointEncoder

FORMAT = "act3d-encoder"

_RENAMES = ((re.compile(r"^encoder\."), "patch_embed."),)
_IGNORED = re.compile(
    r"^(cls_head_finetune|ACT_decoder|MAE_decoder|decoder|mask_token|increase_dim|"
    r"decoder_pos_embed|head|loss|dvae|teacher|lm_head|cls_head|ACT_teacher)"
)


def save_encoder(encoder: PointEncoder, config: EncoderConfig, path: str | Path, source: str = "") -> Path:
    """Write the encoder (weights + sizes) atomically in the format :func:`load_encoder` reads."""
    state = {
        "format": FORMAT,
        "config": config.model_dump(),
        "state_dict": encoder.state_dict(),
        "source": source,
    }
    save_checkpoint(state, path)
    return Path(path)


def convert_official_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official ACT / Point-MAE / fine-tuned PointTransformer state dict to our key names.

    Returns the renamed encoder weights and the keys that were dropped as not part of the encoder
    (decoders, heads, teachers...), so that the caller can report them.
    """
    renamed, dropped = {}, []
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        for prefix in ("ACT_encoder.", "MAE_encoder.", "transformer_q."):
            if key.startswith(prefix):
                key = key.removeprefix(prefix)
                break
        else:
            if _IGNORED.match(key):
                dropped.append(key)
                continue
        for pattern, replacement in _RENAMES:
            key = pattern.sub(replacement, key)
        if key.startswith("patch_embed.") and value.ndim == 3 and value.shape[-1] == 1:
            value = value[..., 0]  # official Conv1d(k=1) weight (out, in, 1) → our Linear (out, in)
        renamed[key] = value
    return renamed, dropped


def load_encoder(path: str | Path, config: EncoderConfig | None = None, strict: bool = True) -> PointEncoder:
    """A :class:`PointEncoder` from our ``encoder.pth``, a stage-II run checkpoint, or an official one.

    For official checkpoints the sizes default to the paper's (``config`` overrides them). With
    ``strict`` any missing or unexpected encoder key is an error that lists them all.
    """
    ckpt = load_checkpoint(path)
    if ckpt.get("format") == FORMAT:
        config = config or EncoderConfig.model_validate(ckpt["config"])
        weights, dropped = ckpt["state_dict"], []
    elif ckpt.get("config", {}).get("task") == "pretrain":
        config = config or EncoderConfig.model_validate(ckpt["config"]["model"])
        weights = {k.removeprefix("encoder."): v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
        dropped = []
    else:
        raw = ckpt.get("base_model") or ckpt.get("model") or ckpt.get("state_dict")
        if not isinstance(raw, dict):
            raise CheckpointError(f"{path}: no 'base_model', 'model' or 'state_dict' entry: not an encoder checkpoint")
        weights, dropped = convert_official_keys(raw)
        config = config or EncoderConfig()
    encoder = PointEncoder(**config.model_dump())
    _load_reporting(encoder, weights, path, strict)
    encoder.source = f"{path}" + (f" (dropped non-encoder keys: {len(dropped)})" if dropped else "")
    return encoder


def _load_reporting(module: nn.Module, weights: dict[str, torch.Tensor], path: str | Path, strict: bool) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = sorted(k for k in set(weights) & set(expected) if weights[k].shape != expected[k].shape)
    if strict and (missing or unexpected or mismatched):
        details = []
        if missing:
            details.append(f"missing {len(missing)}: {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}")
        if unexpected:
            details.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:8])}")
        if mismatched:
            details.append(
                "shape mismatch: "
                + ", ".join(f"{k} {tuple(weights[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched[:8])
            )
        raise CheckpointError(f"{path}: encoder weights do not match: " + "; ".join(details))
    module.load_state_dict({k: v for k, v in weights.items() if k in expected and k not in mismatched}, strict=False)
    module.load_report = {"missing": missing, "unexpected": unexpected, "mismatched": mismatched}
