"""Stage-II objectives: ACT's masked-token distillation and Point-MAE's masked-patch reconstruction."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from act3d.ops import chamfer_distance

DistillLoss = Literal["cosine", "smooth_l1", "l2"]


def masked_feature_loss(pred: torch.Tensor, target: torch.Tensor, kind: DistillLoss = "cosine") -> torch.Tensor:
    """pred, target (B, M, C) over the M masked tokens → scalar.

    ``cosine`` (the paper): batch mean of (1 − mean cosine similarity over masked tokens);
    ``smooth_l1`` and ``l2``: element-wise mean, for the ablation.
    """
    pred, target = pred.float(), target.float()
    if kind == "cosine":
        return (1 - F.cosine_similarity(pred, target, dim=-1).mean(dim=1)).mean()
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    return F.mse_loss(pred, target)


def distillation_floors(
    target: torch.Tensor, redraw: torch.Tensor, kind: DistillLoss = "cosine"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two floors a stage-II loss is read against; target, redraw (B, M, C) → two scalars.

    ``batch_mean``: the loss of predicting every masked token as the batch's mean target, what a
    student that learned nothing about its input scores. ``redraw``: the loss between the target and
    a second, independent target draw for the same input (the teacher's sampling noise), below which
    no student can go on average.
    """
    mean = target.float().mean(dim=(0, 1), keepdim=True).expand_as(target)
    return masked_feature_loss(mean, target, kind), masked_feature_loss(redraw, target, kind)


def masked_patch_loss(pred: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """Point-MAE: pred (B, M, K·3) vs true masked patches (B, M, K, 3) → Chamfer-L2, mean over patches."""
    b, m, k, _ = patches.shape
    # no finiteness check (a host sync): a non-finite prediction gives a non-finite loss, which the trainer reports
    return chamfer_distance(
        pred.float().reshape(b * m, -1, 3), patches.reshape(b * m, k, 3), norm=2, check_finite=False
    )
