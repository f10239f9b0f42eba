"""Stage I model: prompts, the frozen teacher and the autoencoder's plumbing."""

import math

import pytest
import torch
from timm.models.vision_transformer import Block
from torch import nn

from act3d.models.autoencoder import ACTAutoencoder, code_indices, sample_codes
from act3d.models.prompted import PromptedTeacher
from act3d.models.teachers import FrozenTeacher
from act3d.objectives import codebook_kl, patch_chamfer_l1


def tiny_teacher(width=32, depth=3):
    torch.manual_seed(123)
    blocks = [Block(width, 2, qkv_bias=True) for _ in range(depth)]
    return FrozenTeacher(blocks, nn.LayerNorm(width), width=width, source="tiny random", pretrained=False)


class Recorder(nn.Module):
    """A block that records its input and returns it unchanged."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x


def recording_teacher(width=8, depth=3):
    blocks = [Recorder() for _ in range(depth)]
    return FrozenTeacher(blocks, nn.Identity(), width=width, source="rec", pretrained=False), blocks


def test_vpt_deep_replaces_prompt_slots_before_every_later_block():
    teacher, blocks = recording_teacher()
    prompted = PromptedTeacher(teacher, num_prompts=2, mode="deep", prompt_dropout=0.0)
    tokens, centers = torch.randn(1, 4, 8), torch.randn(1, 4, 3)
    out = prompted(tokens, centers)
    pos = prompted.pos_embed(centers)
    # block 1 sees [prompts + prompt_pos ; tokens + pos]
    torch.testing.assert_close(blocks[0].seen[0][:, :2], prompted.prompt_tokens + prompted.prompt_pos)
    torch.testing.assert_close(blocks[0].seen[0][:, 2:], tokens + pos)
    # block i>1 sees its own deep prompts and the position re-added to the running tokens
    for i in (1, 2):
        expected = prompted.deep_prompt_tokens[i - 1] + prompted.deep_prompt_pos[i - 1]
        torch.testing.assert_close(blocks[i].seen[0][0, :2], expected)
        torch.testing.assert_close(blocks[i].seen[0][:, 2:], tokens + (i + 1) * pos)
    torch.testing.assert_close(out, tokens + 3 * pos)


def test_shallow_and_no_prompts():
    teacher, blocks = recording_teacher()
    shallow = PromptedTeacher(teacher, num_prompts=2, mode="shallow", prompt_dropout=0.0)
    assert shallow.deep_prompt_tokens.shape[0] == 0
    shallow(torch.randn(1, 4, 8), torch.randn(1, 4, 3))
    # the input prompts flow through (they are not replaced): block 2 sees them plus the position twice
    first = blocks[0].seen[0][:, :2]
    torch.testing.assert_close(blocks[1].seen[0][:, :2], first + shallow.prompt_pos)
    teacher, blocks = recording_teacher()
    none = PromptedTeacher(teacher, num_prompts=2, mode="none")
    none(torch.randn(1, 4, 8), torch.randn(1, 4, 3))
    assert blocks[0].seen[0].shape == (1, 4, 8)


def make_autoencoder(width=32):
    prompted = PromptedTeacher(tiny_teacher(width), num_prompts=4, mode="deep")
    return ACTAutoencoder(prompted, num_groups=8, group_size=8, encoder_dim=32, codebook_size=16, token_dim=24)


def test_autoencoder_shapes_and_hard_sampling():
    torch.manual_seed(0)
    model = make_autoencoder()
    out = model(torch.randn(2, 128, 3), temperature=0.5)
    assert out.patches.shape == (2, 8, 8, 3) and out.centers.shape == (2, 8, 3)
    assert out.logits.shape == (2, 8, 16) and out.features.shape == (2, 8, 24)
    assert out.coarse.shape == (2, 8, 2, 3) and out.fine.shape == (2, 8, 8, 3)
    torch.manual_seed(1)
    model.train()
    a = model.encode(out.patches, out.centers, hard=True)[1]
    torch.manual_seed(2)
    b = model.encode(out.patches, out.centers, hard=True)[1]
    assert not torch.equal(a, b), "hard Gumbel sampling must be stochastic, not argmax"


def test_teacher_stays_bit_identical_and_gets_no_gradient():
    torch.manual_seed(0)
    model = make_autoencoder()
    teacher_before = {k: v.clone() for k, v in model.teacher.teacher.state_dict().items()}
    trainable = [p for _, p in model.trainable_parameters()]
    assert all(not p.requires_grad for p in model.teacher.teacher.parameters())
    assert {id(p) for p in trainable}.isdisjoint({id(p) for p in model.teacher.teacher.parameters()})
    opt = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    points = torch.randn(4, 128, 3)
    prompt_before = model.teacher.prompt_tokens.detach().clone()
    for _ in range(3):
        out = model(points, temperature=0.5)
        loss = patch_chamfer_l1(out.fine, out.patches) + codebook_kl(out.logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert all(p.grad is None for p in model.teacher.teacher.parameters())
    for k, v in model.teacher.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    assert not torch.equal(model.teacher.prompt_tokens, prompt_before), "gradient must reach the prompts"


def test_codebook_kl_is_zero_for_uniform_usage_and_positive_for_collapse():
    v = 8
    uniform = torch.zeros(2, v, v)
    uniform[:, torch.arange(v), torch.arange(v)] = 30.0  # patch i strongly picks code i: mean is uniform
    assert codebook_kl(uniform).item() == pytest.approx(0.0, abs=1e-6)
    torch.manual_seed(0)
    logits = torch.randn(3, 5, v) * 3
    expected = 0.0
    for b in range(3):
        q = torch.softmax(logits[b].double(), dim=-1).mean(0)
        expected += sum((1 / v) * (torch.log(torch.tensor(1 / v)) - torch.log(q[j])) for j in range(v)) / 3
    assert codebook_kl(logits).item() == pytest.approx(float(expected), rel=1e-4)
    collapsed = torch.zeros(2, v, v)
    collapsed[..., 0] = 30.0
    assert codebook_kl(collapsed).item() > 10 * codebook_kl(logits).item()


def test_a_diverged_prediction_gives_a_non_finite_loss_for_the_trainer_to_report():
    from act3d.objectives import masked_patch_loss

    target = torch.randn(2, 4, 8, 3)
    pred = torch.randn(2, 4, 8, 3)
    assert torch.isfinite(patch_chamfer_l1(pred, target))
    pred[1, 2, 5, 0] = float("nan")
    assert not torch.isfinite(patch_chamfer_l1(pred, target))
    assert not torch.isfinite(masked_patch_loss(pred.reshape(2, 4, 24), target))


def test_codebook_kl_stays_finite_for_peaked_logits():
    # softmax(...).mean().log() underflows to -inf here; 0 * inf would make the stage-I loss NaN
    logits = torch.zeros(2, 4, 16)
    logits[:, :, 0] = 5000.0
    # every patch picks code 0: log q̄ = 0 for it and -5000 for the 15 others;
    # KL(uniform ‖ q̄) = Σ_j (1/16)(log 1/16 − log q̄_j) = 15 · 5000 / 16 − log 16
    assert codebook_kl(logits).item() == pytest.approx(15 * 5000 / 16 - math.log(16), rel=1e-5)
    assert torch.isfinite(0.0 * codebook_kl(logits))


def test_codebook_diversity_spares_peaked_tokens_and_fires_when_the_batch_shares_codes():
    from act3d.objectives import codebook_diversity

    v = 8
    spread = torch.zeros(2, 4, v)  # 8 tokens, each sharply on its own code: the batch uses all codes
    spread.view(8, v)[torch.arange(8), torch.arange(8)] = 50.0
    assert codebook_diversity(spread).item() == pytest.approx(0.0, abs=1e-5)
    # per cloud only 4 of 8 codes are used, so the paper's per-cloud KL fires on the same logits
    assert codebook_kl(spread).item() > 1.0
    shared = torch.zeros(2, 4, v)
    shared[..., 0] = 50.0
    assert codebook_diversity(shared).item() == pytest.approx(math.log(v), rel=1e-4)
    torch.manual_seed(0)
    logits = torch.randn(3, 5, v) * 3
    q = torch.softmax(logits.double().reshape(15, v), dim=-1).mean(0)
    expected = sum(float(q[j] * torch.log(q[j] * v)) for j in range(v))
    assert codebook_diversity(logits).item() == pytest.approx(expected, rel=1e-4)
    # with sharpness 1 the term is log V − I(code; patch): flat tokens no longer satisfy it
    flat = torch.zeros(2, 4, v)
    assert codebook_diversity(flat).item() == pytest.approx(0.0, abs=1e-5)
    assert codebook_diversity(flat, sharpness=1.0).item() == pytest.approx(math.log(v), rel=1e-4)
    assert codebook_diversity(spread, sharpness=1.0).item() == pytest.approx(0.0, abs=1e-5)
    h = -(torch.softmax(logits.double(), -1) * torch.log_softmax(logits.double(), -1)).sum(-1).mean()
    assert codebook_diversity(logits, sharpness=0.5).item() == pytest.approx(expected + 0.5 * float(h), rel=1e-4)


def test_decoding_code_indices_equals_decoding_their_one_hots():
    torch.manual_seed(0)
    model = make_autoencoder().eval()
    centers = model.grouper(torch.randn(2, 128, 3))[1]
    index = torch.randint(16, (2, 8))
    one_hot = torch.nn.functional.one_hot(index, 16).float()
    torch.testing.assert_close(
        model.decode_indices(index, centers), model.decode_codes(one_hot, centers), rtol=0, atol=0
    )


def test_sampled_codes_follow_the_softmax_of_the_logits():
    torch.manual_seed(0)
    logits = torch.tensor([2.0, 0.0, -1.0, 1.0, -30.0]).expand(400, 100, 5)
    counts = torch.bincount(sample_codes(logits).flatten(), minlength=5).double()
    probs = logits[0, 0].softmax(-1).double()
    n = counts.sum()
    sigma = (n * probs * (1 - probs)).sqrt()
    assert ((counts - n * probs).abs() <= 5 * sigma + 1).all(), (counts / n, probs)
    assert counts[4] == 0 and sample_codes(torch.zeros(3, 4, 7)).max() < 7
    peaked = torch.full((2, 3, 8), -50.0).index_fill(-1, torch.tensor([5]), 50.0)
    assert (sample_codes(peaked) == 5).all() and (code_indices(peaked, "argmax") == 5).all()
