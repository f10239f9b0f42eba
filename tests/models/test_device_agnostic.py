"""Every op and model runs on a device it was not written for: PyTorch's ``meta`` device.

Meta tensors carry shapes and a device but no values, and an operation mixing them with CPU tensors
raises, so these tests catch what CPU-only CI cannot see for CUDA or MPS: a tensor created without
``device=``, or a host sync (``.item()``, ``nonzero``) in a path that must stay on the device.
"""

import pytest
import torch
from timm.models.vision_transformer import Block
from torch import nn

from act3d.models.autoencoder import ACTAutoencoder
from act3d.models.masked import MaskedPointModel
from act3d.models.part_segmentation import PartSegmenter
from act3d.models.point_transformer import PointClassifier, PointEncoder
from act3d.models.prompted import PromptedTeacher
from act3d.models.teachers import FrozenTeacher
from act3d.objectives import codebook_kl, masked_feature_loss, masked_patch_loss, patch_chamfer_l1
from act3d.ops import ball_query, chamfer_distance, farthest_point_sample, group, knn

META = torch.device("meta")


def _meta_points(*shape: int) -> torch.Tensor:
    return torch.empty(*shape, 3, device=META)


def _on_meta(*tensors: torch.Tensor) -> bool:
    return all(t.device == META for t in tensors)


def test_ops_stay_on_the_device_without_host_syncs():
    points, centers = _meta_points(4, 256), _meta_points(4, 32)
    lengths = torch.empty(4, dtype=torch.int64, device=META)
    idx = farthest_point_sample(points, 16, lengths, start="random", method="dense")
    dists, nn_idx = knn(centers, points, 8, point_lengths=lengths, method="dense")
    patches, _ = group(points, centers, 8)
    ball = ball_query(centers, points, 0.2, 8)
    a = points.clone().requires_grad_()
    loss = chamfer_distance(a, centers, norm=1, a_lengths=lengths, method="dense")
    loss.backward()
    assert idx.shape == (4, 16) and dists.shape == nn_idx.shape == (4, 32, 8) and patches.shape == (4, 32, 8, 3)
    assert ball.shape == (4, 32, 8) and loss.shape == () and a.grad.shape == a.shape
    assert _on_meta(idx, dists, nn_idx, patches, ball, loss, a.grad)


def _encoder() -> PointEncoder:
    return PointEncoder(dim=32, depth=2, num_heads=2, num_groups=16, group_size=8)


def test_models_can_be_built_on_the_device():
    with META:
        encoder = _encoder()
    assert all(p.device == META for p in encoder.parameters())


@pytest.mark.parametrize("head", ["mlp3", "linear"])
def test_classifier_forward_and_backward(head):
    model = PointClassifier(_encoder(), 5, head).to(META)
    logits = model(_meta_points(2, 256))
    logits.sum().backward()
    assert logits.shape == (2, 5) and _on_meta(logits)
    assert all(p.grad is not None and p.grad.device == META for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("objective", ["act", "point_mae"])
def test_stage_two_forward_and_loss(objective):
    out_dim = 24 if objective == "act" else 8 * 3
    model = MaskedPointModel(_encoder(), out_dim, 0.8, "random", 1, 2).to(META)
    patches, centers = model.encoder.grouper(_meta_points(2, 256))
    mask = model.make_mask(centers)
    pred, _ = model(patches, centers, mask)
    if objective == "act":
        loss = masked_feature_loss(pred, torch.empty(*pred.shape, device=META))
    else:
        loss = masked_patch_loss(pred, torch.empty(2, pred.shape[1], 8, 3, device=META))
    loss.backward()
    assert pred.shape == (2, 12, out_dim) and loss.shape == () and _on_meta(mask, pred, loss)


def test_stage_one_forward_and_losses():
    blocks = [Block(32, 2, qkv_bias=True) for _ in range(2)]
    teacher = FrozenTeacher(blocks, nn.LayerNorm(32), width=32, source="tiny random", pretrained=False)
    model = ACTAutoencoder(PromptedTeacher(teacher, num_prompts=4, mode="deep"), 8, 8, 32, 16, 24).to(META)
    out = model(_meta_points(2, 128), temperature=0.5)
    loss = patch_chamfer_l1(out.fine, out.patches) + codebook_kl(out.logits)
    loss.backward()
    assert out.fine.shape == (2, 8, 8, 3) and _on_meta(out.fine, out.features, loss)


def test_part_segmenter_forward_and_backward():
    model = PartSegmenter(_encoder(), 3, 7, layers=(1, 2)).to(META)
    logits = model(_meta_points(2, 256), torch.zeros(2, dtype=torch.long, device=META))
    logits.sum().backward()
    assert logits.shape == (2, 256, 7) and _on_meta(logits)
