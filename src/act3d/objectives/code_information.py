"""Does a stage-I code carry information about its patch? Diagnostics that cannot be misread.

ACT's stage-II target is the stage-I decoder's input computed from a *hard Gumbel sample* of each
patch's code at τ = 1. That target teaches something only if (1) the sampled code depends on the
patch, and (2) the decoder uses the code. :class:`CodeInformation` measures both over a whole split:

- information: ``H(mean code distribution) − mean per-token entropy``, in nats, an estimate of the
  mutual information between a token and its code (0: every patch gets the same distribution;
  ``log V``: each patch has its own deterministic code);
- ``P(sample = argmax)`` and the distinct sampled and argmax codes over the split;
- fine CD-L1 (``cd_l1``) when decoding (a) the sampled codes, (b) the same codes shuffled across the patches of
  the batch, (c) the argmax codes. If (a) is not clearly below (b) (:data:`INFORMATIVE_GAP`), the
  decoder reconstructs as well from another patch's code: the codes carry no information about
  their patches, and the stage-II target is the batch mean plus Gumbel noise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from act3d.models.autoencoder import ACTAutoencoder, select_codes
from act3d.objectives.reconstruction import patch_chamfer_l1

INFORMATIVE_GAP = 0.05
"""Codes count as informative when shuffling them across patches raises the fine CD-L1 by ≥ 5 %."""
NO_INFORMATION = "codes carry no information about their patches"


class CodeInformation:
    """Accumulates the code diagnostics over the batches of a split; :meth:`summary` gives the metrics.

    Args:
        vocab: V, the codebook size.
    """

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.tokens = 0
        self.clouds = 0
        self.token_entropy = 0.0
        self.agree = 0
        self.prob_sum = torch.zeros(vocab, dtype=torch.float64)
        self.sampled = torch.zeros(vocab, dtype=torch.int64)
        self.argmax = torch.zeros(vocab, dtype=torch.int64)
        self.cd = {"sampled": 0.0, "shuffled": 0.0, "argmax": 0.0, "coarse": 0.0}

    @torch.no_grad()
    def update(self, model: ACTAutoencoder, patches: torch.Tensor, centers: torch.Tensor) -> None:
        """Add one batch: patches (B, G, K, 3), centres (B, G, 3), through ``model`` as it is (train/eval)."""
        logits, idx = model.code_logits(patches, centers)
        logits = logits.float()
        self.add_logits(logits)
        sampled, argmax = select_codes(logits, "sample"), select_codes(logits, "argmax")
        self.add_codes(sampled.argmax(-1), argmax.argmax(-1))
        b, g, v = logits.shape
        shuffled = sampled.reshape(b * g, v)[torch.randperm(b * g, device=logits.device)].view(b, g, v)
        for name, codes in (("sampled", sampled), ("shuffled", shuffled), ("argmax", argmax)):
            coarse, fine = model.decoder(model.decode_codes(codes, centers, idx))
            self.cd[name] += patch_chamfer_l1(fine, patches).item() * b
            if name == "sampled":
                self.cd["coarse"] += patch_chamfer_l1(coarse, patches).item() * b
        self.clouds += b

    def add_logits(self, logits: torch.Tensor) -> None:
        """Entropy statistics of logits (B, G, V)."""
        log_p = logits.float().log_softmax(-1)
        p = log_p.exp()
        self.token_entropy += -(p * log_p).sum(-1).sum().item()
        self.prob_sum += p.reshape(-1, self.vocab).sum(0).double().cpu()
        self.tokens += p.shape[0] * p.shape[1]

    def add_codes(self, sampled: torch.Tensor, argmax: torch.Tensor) -> None:
        """Code indices (B, G) of the Gumbel samples and of the argmax."""
        self.agree += int((sampled == argmax).sum())
        self.sampled += torch.bincount(sampled.flatten().cpu(), minlength=self.vocab)
        self.argmax += torch.bincount(argmax.flatten().cpu(), minlength=self.vocab)

    def summary(self) -> dict[str, float]:
        """The metrics: entropies in nats; ``cd_l1`` (fine) and ``cd_l1_coarse`` decode the sampled codes,
        ``cd_l1_shuffled_codes`` and ``cd_l1_argmax_codes`` the controls; ``code_shuffle_gap`` is relative."""
        mean_p = self.prob_sum / max(self.tokens, 1)
        mean_entropy = float(-(mean_p * mean_p.clamp_min(1e-300).log()).sum())
        token_entropy = self.token_entropy / max(self.tokens, 1)
        out = {
            "code_entropy_token": token_entropy,
            "code_entropy_mean": mean_entropy,
            "code_information": mean_entropy - token_entropy,
            "code_entropy_max": math.log(self.vocab),
            "code_sample_is_argmax": self.agree / max(self.tokens, 1),
            "codes_sampled": float((self.sampled > 0).sum()),
            "codes_argmax": float((self.argmax > 0).sum()),
        }
        if self.clouds:
            cd = {name: total / self.clouds for name, total in self.cd.items()}
            out |= {
                "cd_l1": cd["sampled"],
                "cd_l1_coarse": cd["coarse"],
                "cd_l1_shuffled_codes": cd["shuffled"],
                "cd_l1_argmax_codes": cd["argmax"],
                "code_shuffle_gap": (cd["shuffled"] - cd["sampled"]) / cd["sampled"],
            }
        return out


def informative(summary: dict[str, float]) -> bool:
    """Whether decoding another patch's code is clearly worse than decoding the patch's own."""
    return summary["code_shuffle_gap"] >= INFORMATIVE_GAP


def verdict(summary: dict[str, float]) -> str:
    """One line for the run's output: the information per code and whether the decoder depends on it."""
    figures = (
        f"{summary['code_information']:.2f} nats per code (max {summary['code_entropy_max']:.2f}), "
        f"P(sample = argmax) {summary['code_sample_is_argmax']:.2f}, fine CD-L1 ×1000 with the sampled / "
        f"shuffled / argmax codes {1000 * summary['cd_l1']:.1f} / "
        f"{1000 * summary['cd_l1_shuffled_codes']:.1f} / {1000 * summary['cd_l1_argmax_codes']:.1f}"
    )
    if informative(summary):
        return f"codes carry information about their patches: {figures}"
    return f"{NO_INFORMATION} (shuffling them changes the fine CD-L1 by < {INFORMATIVE_GAP:.0%}): {figures}"


class CodeSwap(NamedTuple):
    """Patches decoded with their own code and with another patch's, all in patch-local coordinates.

    ``patches[i]`` (K, 3) is the i-th picked input patch; ``own[i]`` (M, 3) decodes its cloud with the
    patch's own sampled code; ``swapped[i]`` (M, 3) decodes the same cloud with only that patch's code
    replaced by ``codes[(i + 1) % P]``, the next picked patch's code; ``codes`` (P,) are the sampled code
    indices, pairwise distinct where the batch has P distinct codes."""

    patches: torch.Tensor
    own: torch.Tensor
    swapped: torch.Tensor
    codes: torch.Tensor


@torch.no_grad()
def swap_codes(model: ACTAutoencoder, patches: torch.Tensor, centers: torch.Tensor, picks: int) -> CodeSwap:
    """Decodes ``picks`` patches of a batch (B, G, K, 3) with centres (B, G, 3) with their own sampled code
    and with another picked patch's: where the code matters, the two reconstructions differ in shape.

    The picked patches carry the batch's most frequent sampled codes, one patch per code (the first in
    (cloud, patch) order), so that the own-code column shows what distinct codes decode to."""
    logits, idx = model.code_logits(patches, centers)
    codes = select_codes(logits.float(), "sample")
    index = codes.argmax(-1).flatten()
    values, counts = index.unique(return_counts=True)
    chosen = values[counts.argsort(descending=True, stable=True)][:picks]
    where = torch.stack([(index == c).nonzero()[0, 0] for c in chosen])
    b, g = where // centers.shape[1], where % centers.shape[1]
    own = model.decoder(model.decode_codes(codes, centers, idx))[1][b, g]
    swapped = []
    for i in range(len(where)):
        one = codes[b[i] : b[i] + 1].clone()
        one[0, g[i]] = codes[b[(i + 1) % len(where)], g[(i + 1) % len(where)]]
        swapped.append(model.decoder(model.decode_codes(one, centers[b[i] : b[i] + 1]))[1][0, g[i]])
    return CodeSwap(patches[b, g], own, torch.stack(swapped), chosen)
