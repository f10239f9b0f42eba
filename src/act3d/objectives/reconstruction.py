"""Stage-I objective: Chamfer-L1 of coarse and fine patch reconstructions plus the codebook KL term
(and, as an ablation, a batch-level code-diversity term)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from act3d.ops import chamfer_distance


def patch_chamfer_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ACT's CD-L1 between predicted and true local patches, averaged over all B·G patches.

    pred (B, G, M, 3), target (B, G, K, 3) → scalar ½(mean √d(pred→target) + mean √d(target→pred)).
    """
    b, g = target.shape[:2]
    # no finiteness check (a host sync): a non-finite prediction gives a non-finite loss, which the trainer reports
    return chamfer_distance(pred.reshape(b * g, -1, 3), target.reshape(b * g, -1, 3), norm=1, check_finite=False)


def codebook_kl(logits: torch.Tensor) -> torch.Tensor:
    """KL between the uniform distribution and each cloud's mean codebook distribution, batch-averaged.

    logits (B, G, V) → scalar. This is Point-BERT/ACT's ``F.kl_div(log q̄, log uniform, 'batchmean',
    log_target=True)`` with q̄ the softmax averaged over the G patches of a cloud; it is minimal (0)
    when every code is used equally, which fights codebook collapse.
    """
    # log q̄ as a log-sum-exp of log-softmaxes: finite however peaked the logits (log of a mean of
    # softmaxes underflows to -inf, and 0 · inf is NaN even at KL weight 0)
    log_mean_q = torch.logsumexp(F.log_softmax(logits.float(), dim=-1), dim=1) - math.log(logits.shape[1])
    log_uniform = torch.full_like(log_mean_q, -math.log(logits.shape[-1]))
    return F.kl_div(log_mean_q, log_uniform, reduction="batchmean", log_target=True)


def codebook_diversity(logits: torch.Tensor, sharpness: float = 0.0) -> torch.Tensor:
    """KL(q̄ ‖ uniform) + sharpness · mean H(q), with q each token's softmax and q̄ their mean over all
    B·G tokens of the batch (of this process, under DDP).

    logits (B, G, V) → scalar ≥ 0. The first part (wav2vec 2.0's diversity loss, log V − H(q̄)) is zero
    when the batch as a whole uses every code equally; unlike :func:`codebook_kl` it does not penalise
    a peaked token, but flat tokens also satisfy it. ``sharpness = 1`` adds the tokens' entropy, and
    the term becomes log V − I(code; patch) as the code diagnostics estimate it: zero only for one-hot
    tokens spread evenly over the codebook (information maximisation, Krause et al. 2010). Not in the
    paper: an ablation for short runs (docs/method.md, stage I).
    """
    log_q = F.log_softmax(logits.float().flatten(0, -2), dim=-1)  # (B·G, V)
    log_mean_q = torch.logsumexp(log_q, dim=0) - math.log(log_q.shape[0])
    diversity = math.log(logits.shape[-1]) + (log_mean_q.exp() * log_mean_q).sum()
    if sharpness == 0:
        return diversity
    token_entropy = -(log_q.exp() * log_q).sum(-1).mean()
    return diversity + sharpness * token_entropy
