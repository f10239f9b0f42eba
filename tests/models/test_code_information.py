"""The stage-I code diagnostics fire on codes that say nothing about their patch, and only then."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.models.test_autoencoder import tiny_teacher

from act3d.models.autoencoder import ACTAutoencoder
from act3d.models.prompted import PromptedTeacher
from act3d.objectives.code_information import NO_INFORMATION, CodeInformation, informative, swap_codes, verdict


def test_entropies_and_counts_against_a_direct_computation():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7) * 2
    stats = CodeInformation(7)
    stats.add_logits(logits[:2])
    stats.add_logits(logits[2:])
    sampled, argmax = torch.tensor([[0, 1, 1, 3, 3]] * 3), logits.argmax(-1)
    stats.add_codes(sampled, argmax)
    p = logits.double().softmax(-1).reshape(-1, 7).numpy()
    token = -(p * np.log(p)).sum(-1).mean()
    mean = p.mean(0)
    summary = stats.summary()
    assert summary["code_entropy_token"] == pytest.approx(token, rel=1e-5)
    assert summary["code_entropy_mean"] == pytest.approx(-(mean * np.log(mean)).sum(), rel=1e-6)
    assert summary["code_information"] == pytest.approx(-(mean * np.log(mean)).sum() - token, rel=1e-4)
    assert summary["code_entropy_max"] == pytest.approx(math.log(7))
    assert summary["code_sample_is_argmax"] == pytest.approx((sampled == argmax).double().mean().item())
    assert summary["codes_sampled"] == 3 and summary["codes_argmax"] == len(set(argmax.flatten().tolist()))


def _two_shape_clouds(batch: int, generator: torch.Generator) -> torch.Tensor:
    """(B, 64, 3): 8 far-apart clusters of 8 points, each a line (along x) or a ring (in y-z), at random.

    FPS picks one point per cluster and kNN takes the cluster, so each patch is one shape, and
    which shape is independent of where the cluster is: only a code can tell the decoder."""
    grid = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
    t = torch.linspace(-0.15, 0.15, 8)
    angle = torch.arange(8) * (2 * math.pi / 8)
    line = torch.stack([t, torch.zeros(8), torch.zeros(8)], -1)
    ring = torch.stack([torch.zeros(8), 0.15 * angle.cos(), 0.15 * angle.sin()], -1)
    is_ring = torch.rand(batch, 8, 1, 1, generator=generator) < 0.5
    shapes = torch.where(is_ring, ring, line)  # (B, 8, 8, 3)
    jitter = torch.randn(batch, 8, 1, 3, generator=generator) * 0.1
    return (grid[None, :, None] + jitter + shapes).reshape(batch, 64, 3)


def _diagnose(model: ACTAutoencoder, clouds: torch.Tensor) -> dict[str, float]:
    model.eval()
    torch.manual_seed(0)
    stats = CodeInformation(model.codebook.shape[0])
    for chunk in clouds.split(16):
        stats.update(model, *model.grouper(chunk))
    return stats.summary()


class OracleStageOne(ACTAutoencoder):
    """A stage I whose code is known: code 0 for a line patch, 1 for a ring (logit ``sharpness`` above the others),
    and whose decoder draws the code's template (the true shape, centred). With ``sharpness=0`` every
    patch gets the same flat logits, so the sampled codes are random and say nothing of the patch."""

    def __init__(self, sharpness: float) -> None:
        prompted = PromptedTeacher(tiny_teacher(32, depth=1), num_prompts=0, mode="none")
        super().__init__(prompted, num_groups=8, group_size=8, encoder_dim=16, codebook_size=4, token_dim=8)
        self.sharpness = sharpness
        t, angle = torch.linspace(-0.15, 0.15, 8), torch.arange(8) * (2 * math.pi / 8)
        line = torch.stack([t, torch.zeros(8), torch.zeros(8)], -1)
        ring = torch.stack([torch.zeros(8), 0.15 * angle.cos(), 0.15 * angle.sin()], -1)
        self.decoder = TemplateDecoder(torch.stack([line, ring, line * 3, ring * 3]))  # codes 2, 3 unused

    def code_logits(self, patches: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, None]:
        is_ring = (patches[..., 1:].abs().amax(dim=(-1, -2)) > 0.05).long()  # lines have y = z = 0
        return self.sharpness * F.one_hot(is_ring, 4).float(), None

    def decode_codes(self, codes: torch.Tensor, centers: torch.Tensor, idx: None = None) -> torch.Tensor:
        return codes


class TemplateDecoder(torch.nn.Module):
    """Code weights (B, G, V) → (coarse, fine) = the codes' mix of ``templates`` (V, K, 3)."""

    def __init__(self, templates: torch.Tensor) -> None:
        super().__init__()
        self.templates = templates

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fine = torch.einsum("bgv,vkc->bgkc", codes, self.templates)
        return fine[:, :, ::4], fine


def test_informative_codes_pass_the_check():
    summary = _diagnose(OracleStageOne(sharpness=20.0), _two_shape_clouds(64, torch.Generator().manual_seed(2)))
    assert summary["code_information"] == pytest.approx(math.log(2), abs=0.02)  # half lines, half rings
    assert summary["code_sample_is_argmax"] > 0.99 and summary["codes_sampled"] == summary["codes_argmax"] == 2
    assert summary["cd_l1_shuffled_codes"] > 1.5 * summary["cd_l1"]
    assert summary["cd_l1_argmax_codes"] == pytest.approx(summary["cd_l1"], rel=0.01)
    assert informative(summary) and NO_INFORMATION not in verdict(summary)


def test_codes_from_flat_logits_fail_the_check():
    summary = _diagnose(OracleStageOne(sharpness=0.0), _two_shape_clouds(64, torch.Generator().manual_seed(2)))
    assert summary["code_information"] == pytest.approx(0.0, abs=1e-6)
    assert summary["code_entropy_token"] == pytest.approx(math.log(4), rel=1e-6)
    assert summary["codes_sampled"] == 4 and summary["codes_argmax"] == 1  # argmax of equal logits: code 0
    assert not informative(summary)
    assert verdict(summary).startswith(NO_INFORMATION)


def test_information_maximisation_sharpens_near_flat_codes_into_several_patch_codes():
    """The infomax term alone (no reconstruction) on toy clouds: from logits that carry ~0 nats, the
    code encoder learns deterministic codes spread over several codebook entries."""
    from act3d.objectives import codebook_diversity

    torch.manual_seed(0)
    prompted = PromptedTeacher(tiny_teacher(32, depth=1), num_prompts=0, mode="none")
    model = ACTAutoencoder(prompted, num_groups=8, group_size=8, encoder_dim=16, codebook_size=16, token_dim=8)
    clouds = _two_shape_clouds(8, torch.Generator().manual_seed(3))
    patches, centers = model.grouper(clouds)

    def information() -> tuple[float, int]:
        stats = CodeInformation(16)
        with torch.no_grad():
            logits = model.code_logits(patches, centers)[0]
        stats.add_logits(logits)
        return stats.summary()["code_information"], len(logits.argmax(-1).unique())

    before, _ = information()
    params = [*model.patch_embed.parameters(), *model.dgcnn_1.parameters()]
    opt = torch.optim.Adam(params, lr=3e-2)
    for _ in range(40):
        loss = codebook_diversity(model.code_logits(patches, centers)[0], sharpness=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, codes = information()
    assert before < 0.2
    assert after > 0.6 and codes >= 3  # log 16 = 2.77 at most


def test_code_swap_decodes_each_picked_patch_with_its_own_and_the_next_patchs_code():
    """With the oracle, a line decodes to the line template and, given the ring's code, to the ring."""
    model = OracleStageOne(sharpness=20.0).eval()
    torch.manual_seed(0)
    clouds = _two_shape_clouds(4, torch.Generator().manual_seed(2))
    swap = swap_codes(model, *model.grouper(clouds), picks=3)
    templates = model.decoder.templates
    assert sorted(swap.codes.tolist()) == [0, 1], "one patch per distinct sampled code, at most `picks`"
    for i, code in enumerate(swap.codes.tolist()):
        is_ring = int(swap.patches[i][:, 1:].abs().amax() > 0.05)
        assert code == is_ring
        torch.testing.assert_close(swap.own[i], templates[code])
        torch.testing.assert_close(swap.swapped[i], templates[swap.codes[(i + 1) % 2]])


def test_code_swap_changes_nothing_when_the_decoder_ignores_the_code():
    model = OracleStageOne(sharpness=20.0).eval()
    model.decoder = TemplateDecoder(torch.ones(4, 8, 3))  # every code decodes to the same template
    torch.manual_seed(0)
    swap = swap_codes(model, *model.grouper(_two_shape_clouds(4, torch.Generator().manual_seed(2))), picks=2)
    torch.testing.assert_close(swap.own, swap.swapped)
