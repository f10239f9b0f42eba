"""AdamW with ACT's no-decay groups, and the cosine schedule with warm-up (timm, stepped per epoch)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from timm.scheduler import CosineLRScheduler
from torch import nn

from act3d.engine.config import OptimizerConfig, SchedulerConfig

_FUSED_DEVICES = ("cpu", "cuda")


def parameter_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, object]]:
    """Split trainable parameters: 1-D tensors, biases and names containing "token" get no weight decay."""
    decay, no_decay = [], []
    for name, param in named:
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or "token" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(named: Iterable[tuple[str, nn.Parameter]], config: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`, with torch's fused kernel where the parameters allow it.

    The fused update is the same AdamW up to float rounding, one pass over each tensor instead of
    about eight: on CPU torch otherwise takes its per-tensor loop, which costs a tenth of a stage-I step.
    """
    groups = [g for g in parameter_groups(named, config.weight_decay) if g["params"]]
    params = [p for g in groups for p in g["params"]]
    fused = all(p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused or None)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: SchedulerConfig, epochs: int, steps_per_epoch: int
) -> CosineLRScheduler:
    """Cosine from ``lr`` to ``min_lr`` over ``epochs`` after a linear warm-up from ``warmup_lr``.

    ``config.update == "step"`` moves the rate every iteration along the same curve (the default;
    one-epoch warm-ups then mean something in short runs); ``"epoch"`` is the official per-epoch
    stepping. Call both ``scheduler.step(epoch)`` at each epoch start and
    ``scheduler.step_update(global_step)`` before each update: the one that does not apply is a no-op.
    """
    per_step = config.update == "step"
    unit = steps_per_epoch if per_step else 1
    return CosineLRScheduler(
        optimizer,
        t_initial=max(epochs * unit, 1),
        lr_min=config.min_lr,
        warmup_t=min(config.warmup_epochs * unit, max(epochs * unit - 1, 0)),
        warmup_lr_init=config.warmup_lr,
        t_in_epochs=not per_step,
    )
