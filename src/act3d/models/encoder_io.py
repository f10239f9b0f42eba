"""Saving and loading pretrained point encoders, ours and the official ACT / Point-MAE releases.

Our file format is a ``weights_only``-safe dict ``{"format": "act3d-encoder", "config": {...},
"state_dict": {...}, "source": str}``; our shareable format is a folder (or a Hugging Face Hub
repository) with ``model.safetensors`` and ``config.json`` (see docs/checkpoints.md). Official
checkpoints hold ``base_model`` (or ``model``) with keys such as
``module.ACT_encoder.encoder.first_conv.0.weight``; :func:`convert_official_keys` renames them
(see docs/checkpoints.md for the table) and every unknown or missing key is reported.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from act3d.errors import CheckpointError, ConfigError
from act3d.models.point_transformer import EncoderConfig, PointEncoder
from act3d.util.files import atomic_path, available_memory, load_checkpoint, save_checkpoint

FORMAT = "act3d-encoder"
FOLDER_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HUB_PREFIX = "hf:"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

_RENAMES = ((re.compile(r"^encoder\."), "patch_embed."),)
_ENCODER_PREFIXES = ("ACT_encoder.", "MAE_encoder.", "transformer_q.")
_HEADS = re.compile(r"^(lm_head|cls_head|mask_token)(\.|$)")
"""Parameters of an official pretraining encoder module that are not part of the encoder."""
_IGNORED = re.compile(
    r"^(cls_head_finetune|ACT_decoder|MAE_decoder|decoder|mask_token|increase_dim|decoder_pos_embed|head|"
    r"proj_head|loss|dvae|teacher|lm_head|cls_head|ACT_teacher)"
)
"""Top-level parameters of an official fine-tuning model that are not part of the encoder."""

OFFICIAL_PRESETS: dict[str, dict[str, int]] = {
    "modelnet": {"num_groups": 64, "group_size": 32},
    "fewshot": {"num_groups": 64, "group_size": 32},
    "shapenet": {"num_groups": 64, "group_size": 32},
    "scan": {"num_groups": 128, "group_size": 32},
    "partseg": {"num_groups": 128, "group_size": 32},
    "modelnet8k": {"num_groups": 512, "group_size": 32},
}
"""Patch settings of the official configs, which checkpoints do not record: ModelNet40 (1k points),
few-shot and ShapeNet-55 pretraining 64×32; ScanObjectNN and part segmentation (2048 points)
128×32; ModelNet40 with 8k points 512×32."""


def official_config(preset: str) -> EncoderConfig:
    """The paper-size encoder config with the patch settings of the official ``preset``."""
    if preset not in OFFICIAL_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; official presets: {', '.join(OFFICIAL_PRESETS)}")
    return EncoderConfig(**OFFICIAL_PRESETS[preset])


class OfficialGroupsWarning(UserWarning):
    """An official checkpoint was loaded without saying how many groups its model used."""


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


def save_encoder_folder(
    encoder: PointEncoder, config: EncoderConfig, folder: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``folder/model.safetensors`` (no pickle) and ``folder/config.json`` (``format``,
    ``format_version``, the ``encoder`` sizes, then ``metadata``), each atomically; the format
    :func:`load_encoder` reads from a folder or a Hugging Face Hub repository."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, tmp, metadata={"format": FORMAT})
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # safetensors writes 0600; a folder to share is readable as any file
    card = {"format": FORMAT, "format_version": FOLDER_VERSION, "encoder": config.model_dump(), **(metadata or {})}
    with atomic_path(folder / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
    return folder


def _read_folder(folder: Path) -> dict[str, Any]:
    """Our exported folder as a checkpoint dict (``format``, ``config``, ``state_dict``, ``source``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(
                f"{path}: does not exist: an act3d encoder folder holds {CONFIG_FILE} and {WEIGHTS_FILE}"
            )
    try:
        card = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{config_path}: not readable JSON ({err})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT or not isinstance(card.get("encoder"), dict):
        raise CheckpointError(f"{config_path}: not an act3d encoder config (needs format {FORMAT!r} and 'encoder')")
    if card.get("format_version", 0) > FOLDER_VERSION:
        raise CheckpointError(
            f"{config_path}: format_version {card['format_version']} is newer than this act3d reads ({FOLDER_VERSION})"
        )
    try:
        weights = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({err})") from None
    return {"format": FORMAT, "config": card["encoder"], "state_dict": weights, "source": card.get("source", "")}


def is_hub_id(name: str | Path) -> bool:
    """``hf:owner/name``, or ``owner/name`` that is not a local path: a Hugging Face Hub repository."""
    text = str(name)
    if text.startswith(HUB_PREFIX):
        return True
    return bool(_REPO_ID.fullmatch(text)) and not Path(text).exists()


def hub_folder(repo_id: str) -> Path:
    """The local snapshot of Hub repository ``repo_id`` (``hf:`` prefix allowed), through
    ``huggingface_hub``'s normal cache: read from the cache, downloaded only when
    ``ACT3D_ALLOW_DOWNLOAD=1`` (and the hub's own ``HF_HUB_OFFLINE`` is not set)."""
    from huggingface_hub import snapshot_download

    from act3d.models.teachers.timm_vit import ALLOW_DOWNLOAD_ENV

    repo_id = repo_id.removeprefix(HUB_PREFIX)
    allowed = os.environ.get(ALLOW_DOWNLOAD_ENV) == "1"
    try:
        path = snapshot_download(
            repo_id, allow_patterns=[WEIGHTS_FILE, CONFIG_FILE, "README.md"], local_files_only=not allowed
        )
    except (OSError, ValueError) as err:  # the hub's not-cached, not-found, HTTP and bad-id errors
        hint = "" if allowed else f"; downloads are off: set {ALLOW_DOWNLOAD_ENV}=1 to fetch it"
        raise CheckpointError(
            f"{repo_id}: not found in the Hugging Face cache{hint} ({type(err).__name__}: {err})"
        ) from None
    return Path(path)


def convert_official_keys(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official ACT / Point-MAE / fine-tuned PointTransformer state dict to our key names.

    Pretraining layouts hold the encoder under a prefix (``ACT_encoder.``, ``MAE_encoder.``,
    ``transformer_q.``) beside decoders, projection heads and the frozen tokenizer: the encoder is
    then exactly the prefixed keys, less its pretraining heads (``lm_head``, ``cls_head``,
    ``mask_token``). Fine-tuning layouts hold the encoder at the top level beside the
    classification head. Returns the renamed encoder weights and the keys dropped as not part of
    the encoder (decoders, heads, teachers...), so that the caller can report them.
    """
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    prefixed = any(key.startswith(_ENCODER_PREFIXES) for key in state_dict)
    renamed, dropped = {}, []
    for original, value in state_dict.items():
        key = _strip_encoder_prefix(original)
        if (prefixed and (key == original or _HEADS.match(key))) or (not prefixed and _IGNORED.match(key)):
            dropped.append(original)
            continue
        for pattern, replacement in _RENAMES:
            key = pattern.sub(replacement, key)
        if key.startswith("patch_embed.") and value.ndim == 3 and value.shape[-1] == 1:
            value = value[..., 0]  # official Conv1d(k=1) weight (out, in, 1) → our Linear (out, in)
        renamed[key] = value
    return renamed, dropped


def _strip_encoder_prefix(key: str) -> str:
    for prefix in _ENCODER_PREFIXES:
        if key.startswith(prefix):
            return key.removeprefix(prefix)
    return key


def load_encoder(
    path: str | Path, config: EncoderConfig | None = None, strict: bool = True, preset: str | None = None
) -> PointEncoder:
    """A :class:`PointEncoder` from our ``encoder.pth``, a stage-II run checkpoint, an official one, an
    exported folder (``model.safetensors`` + ``config.json``, :func:`save_encoder_folder`) or a Hugging
    Face Hub repository holding one (``owner/name`` or ``hf:owner/name``, :func:`hub_folder`);
    ``"random"`` gives a randomly initialised one (the "no pretraining" arm; paper sizes unless ``config``
    or ``preset`` says otherwise). The one encoder loader: ``act3d.load_encoder`` is this function.

    The sizes come from ``config`` when the caller gives one; else from the file when it is ours
    (with ``preset``'s patch settings, if named); else, for official checkpoints, which do not record
    their number of groups, from the paper's sizes and the patch settings of the official ``preset``
    (a key of :data:`OFFICIAL_PRESETS`: ``"scan"`` and ``"partseg"`` use 128 groups). An official
    checkpoint loaded with neither warns (:class:`OfficialGroupsWarning`) and uses 64 groups.
    With ``strict`` any missing or unexpected encoder key is an error that lists them all. The size
    of the encoder a config declares is checked against the stored weights (and the memory) before
    it is built, so a damaged config (``dim=10**9``) is an error, not an attempt to allocate terabytes.

    Raises:
        CheckpointError: unreadable file, not an encoder checkpoint, config and weights that disagree.
        ConfigError: an unknown ``preset``, or both ``config`` and ``preset``.
    """
    if preset is not None:
        if config is not None:
            raise ConfigError("give the encoder sizes as config or as preset, not both")
        sizes = official_config(preset)  # also checks the name
    if str(path) == "random":
        return PointEncoder(**(config or (sizes if preset else EncoderConfig())).model_dump())
    if is_hub_id(path):
        path = hub_folder(str(path))
    ckpt = _read_folder(Path(path)) if Path(path).is_dir() else load_checkpoint(path)
    try:
        config, weights, dropped = _encoder_parts(ckpt, config, preset, path)
    except CheckpointError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as err:  # pydantic's is a ValueError
        raise CheckpointError(f"{path}: not a valid encoder checkpoint ({type(err).__name__}: {err})") from None
    bad = [repr(k) for k, v in weights.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        raise CheckpointError(f"{path}: encoder weights hold entries that are not named tensors: {', '.join(bad[:8])}")
    try:
        _check_buildable(config, weights, path, strict)
        encoder = PointEncoder(**config.model_dump())
    except CheckpointError:
        raise
    except (AssertionError, ValueError, RuntimeError, OverflowError, MemoryError) as err:
        raise CheckpointError(f"{path}: cannot build an encoder with {config.model_dump()}: {err}") from None
    _load_reporting(encoder, weights, path, strict)
    encoder.source = f"{path}" + (f" (dropped non-encoder keys: {len(dropped)})" if dropped else "")
    return encoder


def _encoder_parts(
    ckpt: dict, config: EncoderConfig | None, preset: str | None, path: str | Path
) -> tuple[EncoderConfig, dict[str, torch.Tensor], list[str]]:
    """(config, encoder weights under our names, dropped keys) of a checkpoint in any supported layout."""
    patches = OFFICIAL_PRESETS.get(preset, {})
    stored = ckpt.get("config")
    if ckpt.get("format") == FORMAT:
        config = config or EncoderConfig.model_validate(ckpt["config"]).model_copy(update=patches)
        return config, dict(ckpt["state_dict"]), []
    if isinstance(stored, dict) and stored.get("task") == "pretrain":
        config = config or EncoderConfig.model_validate(stored["model"]).model_copy(update=patches)
        weights = {k.removeprefix("encoder."): v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
        return config, weights, []
    raw = next((ckpt[k] for k in ("base_model", "model", "state_dict") if isinstance(ckpt.get(k), dict)), None)
    if raw is None:
        raise CheckpointError(f"{path}: no 'base_model', 'model' or 'state_dict' entry: not an encoder checkpoint")
    weights, dropped = convert_official_keys(raw)
    if config is None and preset is None:
        warnings.warn(
            f"{path}: an official checkpoint does not record its number of groups; using 64×32. The "
            "official configs use 64 for ModelNet40 (1k points), few-shot and pretraining, 128 for "
            "ScanObjectNN and part segmentation, 512 for ModelNet40 8k: pass preset='scan' (or "
            "'modelnet', 'partseg', 'modelnet8k') or a config",
            OfficialGroupsWarning,
            stacklevel=3,
        )
    return config or EncoderConfig(**patches), weights, dropped


def encoder_parameter_count(config: EncoderConfig) -> int:
    """Parameters of ``PointEncoder(**config)``, counted on the meta device (nothing allocated).

    Encoders of depth 1 and 2 are built and the difference (one block) extrapolated to ``config.depth``:
    the blocks are identical in size, and building a declared depth of 10⁶ would itself take minutes.
    """

    def count(depth: int) -> int:
        with torch.device("meta"):
            encoder = PointEncoder(**{**config.model_dump(), "depth": depth})
        return sum(p.numel() for p in encoder.parameters())

    one, two = count(1), count(2)
    return one + (config.depth - 1) * (two - one)


def _check_buildable(config: EncoderConfig, weights: dict[str, torch.Tensor], path: str | Path, strict: bool) -> None:
    """Refuse, before allocating, an encoder far larger than the weights (strict) or than the memory."""
    try:
        params = encoder_parameter_count(config)
    except RuntimeError as err:  # a tensor too large even to describe: its byte size overflows int64
        raise CheckpointError(
            f"{path}: the config declares an encoder of too many parameters to count (dim {config.dim}, depth "
            f"{config.depth}, mlp_ratio {config.mlp_ratio}): {err}"
        ) from None
    stored = sum(v.numel() for v in weights.values())
    if strict and params > 2 * stored + 10**6:
        raise CheckpointError(
            f"{path}: the config declares an encoder of {params:,} parameters (dim {config.dim}, depth "
            f"{config.depth}) but the checkpoint holds only {stored:,} values: config and weights do not match"
        )
    if 4 * params > available_memory():
        raise CheckpointError(f"{path}: an encoder of {params:,} parameters does not fit in the available memory")


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
