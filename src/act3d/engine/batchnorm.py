"""Re-estimating BatchNorm statistics ("precise BN") before evaluation.

BatchNorm's running averages (momentum 0.1) trail the weights; in short runs with a high learning
rate they can lag far enough that eval-mode accuracy falls to chance while train-mode accuracy is
high. Recomputing them over a few training batches with the final weights removes that lag. It is
off in the paper presets (the official code does not do it) and on in the CPU presets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[object], forward: Callable[[object], object]) -> int:
    """Reset every BatchNorm's running stats and re-estimate them as a plain average over ``batches``.

    ``forward(batch)`` runs the model on one batch. Dropout and drop-path are off meanwhile; the
    model's train/eval state is restored. Returns the number of batches used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
    count = 0
    for batch in batches:
        forward(batch)
        count += 1
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return count
