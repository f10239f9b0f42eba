"""Parity with the official ACT model classes (docs/checkpoints.md lists each fix and what remains)."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from act3d.engine.config import load_config
from act3d.models.autoencoder import ACTAutoencoder, AutoencoderConfig
from act3d.models.masked import MaskedPointModel, take_tokens
from act3d.models.point_transformer import PointEncoder
from act3d.models.transformer import TransformerStack
from act3d.presets import resolve_preset
from act3d.tasks.pretrain_teacher import PretrainTeacherConfig


def _official_block(x: torch.Tensor, block: nn.Module, heads: int) -> torch.Tensor:
    """The official pre-norm block, written out: ``nn.LayerNorm`` (eps 1e-5), softmax attention, GELU MLP."""
    b, t, d = x.shape
    h = F.layer_norm(x, (d,), block.norm1.weight, block.norm1.bias, eps=1e-5)
    q, k, v = F.linear(h, block.attn.qkv.weight).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (d // heads) ** -0.5).softmax(-1)
    x = x + block.attn.proj((attn @ v).transpose(1, 2).reshape(b, t, d))
    h = F.layer_norm(x, (d,), block.norm2.weight, block.norm2.bias, eps=1e-5)
    return x + block.mlp.fc2(F.gelu(block.mlp.fc1(h)))


def test_blocks_match_the_official_block_where_layernorm_eps_matters():
    # Tokens of std 0.01 have variance 1e-4: eps 1e-6 instead of 1e-5 would move them by ~4 %.
    torch.manual_seed(0)
    stack = TransformerStack(24, 2, 2).eval()
    x, pos = torch.randn(3, 9, 24) * 0.01, torch.randn(3, 9, 24) * 0.01
    expected = x
    for block in stack.blocks:
        expected = _official_block(expected + pos, block, heads=2)
    torch.testing.assert_close(stack(x, pos), expected, atol=1e-6, rtol=1e-5)


def test_every_layernorm_of_student_and_decoder_has_eps_1e5():
    encoder = PointEncoder(dim=24, depth=3, num_heads=2, num_groups=8, group_size=8)
    model = MaskedPointModel(encoder, out_dim=10, decoder_depth=2, decoder_heads=2)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * 3 + 1 + 2 * 2 + 1
    assert {m.eps for m in norms} == {1e-5}


def test_decoder_is_xavier_initialised_with_drop_path_rising_to_the_encoder_rate():
    torch.manual_seed(0)
    encoder = PointEncoder(dim=48, depth=1, num_heads=2, num_groups=8, group_size=8)
    model = MaskedPointModel(encoder, out_dim=10, decoder_depth=3, decoder_heads=2, decoder_drop_path=0.1)
    rates = [b.drop_path1.drop_prob if isinstance(b.drop_path1, DropPath) else 0.0 for b in model.decoder.blocks]
    assert rates == pytest.approx([0.0, 0.05, 0.1])
    linears = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3 * 4
    for layer in linears:
        bound = math.sqrt(6 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound
        # uniform on [-bound, bound] has std bound/√3 (PyTorch's default init gives 1/√(3·fan_in))
        assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert layer.bias is None or not layer.bias.any()


def test_stage_two_decoder_shares_the_encoder_drop_path(tmp_path):
    from act3d.tasks.pretrain import PretrainConfig, PretrainTask

    config = load_config(
        PretrainConfig,
        resolve_preset("pretrain_cpu"),
        ["objective=point_mae", "model.drop_path=0.2", "data.options.num_per_class=2", "svm_eval=false"],
    )
    decoder = PretrainTask(config).model.decoder
    assert decoder.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)


def _masked_model(embed_visible_only: bool) -> MaskedPointModel:
    torch.manual_seed(0)
    encoder = PointEncoder(dim=24, depth=2, num_heads=2, drop_path=0.0, num_groups=16, group_size=8)
    return MaskedPointModel(
        encoder, 10, 0.75, decoder_heads=2, decoder_drop_path=0.0, embed_visible_only=embed_visible_only
    )


def test_student_embeds_all_patches_then_selects_as_the_official_model():
    model = _masked_model(embed_visible_only=False)
    seen = []
    model.encoder.patch_embed.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    patches, centers = model.encoder.grouper(torch.randn(3, 128, 3))
    mask = model.make_mask(centers)
    _, encoded = model(patches, centers, mask)
    assert seen == [(3, 16, 8, 3)], "the PointNet embeds every patch (BatchNorm statistics over all of them)"
    visible = model.split(mask)[0]
    tokens = take_tokens(model.encoder.patch_embed(patches), visible)
    torch.testing.assert_close(encoded, model.encoder.encode_tokens(tokens, take_tokens(centers, visible)))
    model.embed_visible_only = True
    _, visible_only = model(patches, centers, mask)
    assert (visible_only - encoded).abs().max() > 1e-3, "train-mode BatchNorm must see different batches"
    model.eval()
    _, eval_visible_only = model(patches, centers, mask)
    model.embed_visible_only = False
    torch.testing.assert_close(eval_visible_only, model(patches, centers, mask)[1])


def test_stage_one_tokenizer_is_384_wide_as_the_official_config():
    paper = load_config(PretrainTeacherConfig, resolve_preset("act_stage1_shapenet55"))
    assert paper.model.encoder_dim == 384
    assert AutoencoderConfig().encoder_dim == 384
    assert inspect.signature(ACTAutoencoder).parameters["encoder_dim"].default == 384
