"""The building blocks of the networks, each against a naive reference."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from act3d.models.dgcnn import CenterDGCNN, group_norm_last
from act3d.models.folding import FoldingDecoder
from act3d.models.tokenizer import MiniPointNet, PatchGrouper
from act3d.models.transformer import TransformerStack


def _edge_features_reference(f: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The previous (and official) edge features: f (B, C, G) → (B, 2C, G, k) = [f_j − f_i, f_i], by a loop."""
    b, c, g = f.shape
    out = torch.empty(b, 2 * c, g, idx.shape[-1])
    for bi in range(b):
        for i in range(g):
            for slot, j in enumerate(idx[bi, i].tolist()):
                out[bi, :c, i, slot] = f[bi, :, j] - f[bi, :, i]
                out[bi, c:, i, slot] = f[bi, :, i]
    return out


def _dgcnn_reference(dgcnn: CenterDGCNN, tokens: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """DGCNN with one Conv2d per edge (the official layout of the computation)."""
    idx = dgcnn.neighbours(centers)
    f = dgcnn.input_trans(tokens.transpose(1, 2))
    outs = []
    for layer in (dgcnn.layer1, dgcnn.layer2, dgcnn.layer3, dgcnn.layer4):
        f = layer(_edge_features_reference(f, idx)).amax(dim=-1)
        outs.append(f)
    return dgcnn.layer5(torch.cat(outs, dim=1)).transpose(1, 2)


def test_dgcnn_edge_convolution_by_two_products_matches_one_convolution_per_edge():
    torch.manual_seed(0)
    dgcnn = CenterDGCNN(12, 20)
    tokens, centers = torch.randn(2, 9, 12, requires_grad=True), torch.randn(2, 9, 3)
    fast = dgcnn(tokens, centers)
    fast.square().sum().backward()
    grads = [p.grad.clone() for p in dgcnn.parameters()] + [tokens.grad.clone()]
    dgcnn.zero_grad()
    tokens.grad = None
    slow = _dgcnn_reference(dgcnn, tokens, centers)
    slow.square().sum().backward()
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    for got, expected in zip(grads, [p.grad for p in dgcnn.parameters()] + [tokens.grad], strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_group_norm_on_channel_last_tensors_matches_group_norm():
    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(4, 12)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, 5, 2, 12) * 3 + 1
    expected = norm(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(group_norm_last(x, norm), expected, atol=1e-5, rtol=1e-5)


def test_dgcnn_is_permutation_equivariant_over_centres():
    torch.manual_seed(0)
    net = CenterDGCNN(16, 32).eval()
    tokens, centers = torch.randn(2, 10, 16), torch.randn(2, 10, 3)
    perm = torch.randperm(10)
    out = net(tokens, centers)
    assert out.shape == (2, 10, 32)
    torch.testing.assert_close(net(tokens[:, perm], centers[:, perm]), out[:, perm], atol=1e-5, rtol=1e-4)


def test_mini_pointnet_ignores_point_order_within_a_patch():
    torch.manual_seed(0)
    net = MiniPointNet(24).eval()
    patches = torch.randn(2, 4, 8, 3)
    out = net(patches)
    assert out.shape == (2, 4, 24)
    torch.testing.assert_close(net(patches[:, :, torch.randperm(8)]), out, atol=1e-5, rtol=1e-4)


def test_grouper_patches_are_local_and_centred_on_fps_points():
    torch.manual_seed(0)
    points = torch.randn(2, 200, 3)
    patches, centers = PatchGrouper(16, 8)(points)
    assert patches.shape == (2, 16, 8, 3) and centers.shape == (2, 16, 3)
    # nearest neighbour of a centre (which is a cloud point) is itself: offset 0
    torch.testing.assert_close(patches[:, :, 0], torch.zeros(2, 16, 3))
    absolute = patches + centers[:, :, None]
    for b in range(2):
        d = (centers[b][:, None] - points[b][None]).norm(dim=-1)
        kth = d.topk(8, largest=False).values[:, -1]
        flat = absolute[b].reshape(-1, 3)
        assert ((flat[:, None] - points[b][None]).norm(dim=-1).min(1).values < 1e-5).all()
        assert ((absolute[b] - centers[b, :, None]).norm(dim=-1).amax(1) <= kth + 1e-5).all()


def test_folding_decoder_fine_points_sit_around_their_coarse_point():
    torch.manual_seed(0)
    dec = FoldingDecoder(12, 32).eval()
    with torch.no_grad():
        dec.final_conv[-1].weight.zero_()
        dec.final_conv[-1].bias.zero_()
    coarse, fine = dec(torch.randn(2, 3, 12))
    assert coarse.shape == (2, 3, 8, 3) and fine.shape == (2, 3, 32, 3)
    torch.testing.assert_close(fine.reshape(2, 3, 8, 4, 3), coarse[:, :, :, None].expand(-1, -1, -1, 4, -1))


def test_transformer_stack_matches_a_manual_pre_norm_block():
    torch.manual_seed(0)
    stack = TransformerStack(16, 1, 2).eval()
    x, pos = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    out = stack(x, pos)
    blk = stack.blocks[0]
    h = x + pos
    q, k, v = blk.attn.qkv(blk.norm1(h)).reshape(2, 5, 3, 2, 8).permute(2, 0, 3, 1, 4)
    att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 5, 16)
    h = h + blk.attn.proj(att)
    h = h + blk.mlp.fc2(nn.functional.gelu(blk.mlp.fc1(blk.norm2(h))))
    torch.testing.assert_close(out, h, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stack.forward_intermediates(x, pos, (1,))[0], out)


def test_forward_intermediates_match_the_full_stack_and_skip_later_blocks():
    torch.manual_seed(0)
    stack = TransformerStack(16, 3, 2).eval()
    x, pos = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    first = stack.blocks[0](x + pos)
    second = stack.blocks[1](first + pos)
    stack.blocks[2].register_forward_hook(lambda *_: pytest.fail("block 3 ran"))
    taken = stack.forward_intermediates(x, pos, (2, 1))
    torch.testing.assert_close(taken[0], first)
    torch.testing.assert_close(taken[1], second)
