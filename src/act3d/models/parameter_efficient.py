"""Parameter-efficient fine-tuning of the student: LoRA through ``peft``, VPT-Deep prompts, and the
bookkeeping of what trains (docs/method.md, "Parameter-efficient fine-tuning").

LoRA adds ``B·A`` (rank r, scaled by alpha / r, B zero-initialised so the encoder starts exactly as
pretrained) to the chosen Linear layers of every block; prompts are :class:`DeepPromptedStack`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from torch import nn

from act3d.errors import ConfigError
from act3d.models.point_transformer import PointEncoder
from act3d.models.prompted import DeepPromptedStack

LORA_TARGETS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
"""The Linear layers of a block LoRA may adapt (timm ``Block`` names)."""


def add_lora(
    encoder: PointEncoder, rank: int, alpha: float, dropout: float, targets: Sequence[str]
) -> list[nn.Parameter]:
    """Inject LoRA adapters (``peft``) into ``targets`` of every block of ``encoder``, in place; returns them."""
    unknown = sorted(set(targets) - set(LORA_TARGETS))
    if unknown or not targets:
        raise ConfigError(f"LoRA targets {unknown or list(targets)}: choose among {list(LORA_TARGETS)}")
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ConfigError("mode=lora needs the peft library: pip install 'act3d[peft]'") from None
    pattern = r"blocks\.blocks\.\d+\.(" + "|".join(re.escape(t) for t in targets) + ")"
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=pattern)
    inject_adapter_in_model(config, encoder)
    return [p for name, p in encoder.named_parameters() if ".lora_" in name]


def add_deep_prompts(encoder: PointEncoder, count: int, dropout: float) -> list[nn.Parameter]:
    """Give every block of ``encoder`` ``count`` learned prompt tokens (VPT-Deep), in place; returns them."""
    encoder.blocks = DeepPromptedStack(encoder.blocks, count, dropout)
    return [encoder.blocks.prompts]


def train_only(model: nn.Module, trainable: Iterable[nn.Parameter]) -> str:
    """Freeze every parameter of ``model`` but ``trainable``; returns ``"N of M (x %)"`` trainable."""
    keep = {id(p) for p in trainable}
    for param in model.parameters():
        param.requires_grad_(id(param) in keep)
    return trainable_fraction(model)


def trainable_fraction(model: nn.Module) -> str:
    """``"N of M (x %)"``: the parameters of ``model`` that train, of all its parameters."""
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{train:,} of {total:,} ({100 * train / max(total, 1):.2f} %)"
