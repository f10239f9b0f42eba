"""Stage II model: masking and the visible-only encoder."""

import pytest
import torch

from act3d.models.masked import MaskedPointModel, block_mask, random_mask, split_tokens, take_tokens
from act3d.models.point_transformer import PointEncoder


def test_random_mask_hides_exactly_the_ratio_and_varies():
    torch.manual_seed(0)
    mask = random_mask(4, 64, 0.8, torch.device("cpu"))
    assert mask.shape == (4, 64) and mask.dtype == torch.bool
    assert (mask.sum(1) == 51).all()  # int(0.8 * 64), as in the paper
    assert not torch.equal(mask[0], mask[1])


def test_block_mask_is_a_contiguous_region():
    torch.manual_seed(0)
    centers = torch.randn(2, 32, 3)
    mask = block_mask(centers, 0.5)
    assert (mask.sum(1) == 16).all()
    for b in range(2):
        inside, outside = centers[b][mask[b]], centers[b][~mask[b]]
        # the mask is a ball: some masked centre is nearer to every masked one than to any visible one
        ball = (torch.cdist(inside, inside).amax(1) <= torch.cdist(inside, outside).amin(1)).any()
        assert ball.item()


def test_encoder_sees_only_visible_tokens():
    torch.manual_seed(0)
    encoder = PointEncoder(dim=24, depth=2, num_heads=2, num_groups=16, group_size=8)
    model = MaskedPointModel(encoder, out_dim=10, mask_ratio=0.75, decoder_heads=2, embed_visible_only=True)
    seen = []
    encoder.patch_embed.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    encoder.blocks.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    patches, centers = encoder.grouper(torch.randn(3, 128, 3))
    mask = model.make_mask(centers)
    pred, encoded = model(patches, centers, mask)
    assert seen[0] == (3, 4, 8, 3), "the PointNet must only embed the 4 visible patches"
    assert seen[1] == (3, 5, 24), "the blocks must only see CLS + 4 visible tokens"
    assert pred.shape == (3, 12, 10) and encoded.shape == (3, 5, 24)


def test_masked_tokens_do_not_leak_into_the_encoder_output():
    torch.manual_seed(0)
    encoder = PointEncoder(dim=24, depth=2, num_heads=2, num_groups=16, group_size=8).eval()
    model = MaskedPointModel(encoder, out_dim=10, mask_ratio=0.75, decoder_heads=2).eval()
    patches, centers = encoder.grouper(torch.randn(2, 128, 3))
    mask = model.make_mask(centers)
    _, encoded = model(patches, centers, mask)
    noisy = patches.clone()
    noisy[mask] += torch.randn_like(noisy[mask])
    _, encoded_noisy = model(noisy, centers, mask)
    torch.testing.assert_close(encoded, encoded_noisy)


def test_split_tokens_matches_boolean_indexing_and_checks_the_count():
    torch.manual_seed(0)
    mask = random_mask(5, 20, 0.6, torch.device("cpu"))
    x = torch.randn(5, 20, 4, 3)
    visible, masked = split_tokens(mask, 12)
    torch.testing.assert_close(take_tokens(x, visible), x[~mask].reshape(5, 8, 4, 3), rtol=0, atol=0)
    torch.testing.assert_close(take_tokens(x, masked), x[mask].reshape(5, 12, 4, 3), rtol=0, atol=0)
    with pytest.raises(ValueError, match="must hide 11 of its 20 tokens"):
        split_tokens(mask, 11)


def test_distillation_floors_fire_on_a_mean_predictor_and_on_sampling_noise():
    from act3d.objectives import distillation_floors, masked_feature_loss

    torch.manual_seed(0)
    target = torch.randn(4, 6, 16)
    batch_mean, redraw = distillation_floors(target, target.clone())
    assert redraw.item() < 1e-6, "a noiseless teacher has no redraw floor"
    mean = target.mean(dim=(0, 1), keepdim=True).expand_as(target)
    assert batch_mean.item() == pytest.approx(masked_feature_loss(mean, target).item())
    constant = torch.ones(1, 1, 16) + 0.01 * torch.randn(4, 6, 16)  # targets that do not depend on the input
    assert distillation_floors(constant, constant.flip(0))[0].item() < 1e-3, "the mean predictor is perfect"
    assert distillation_floors(target, torch.randn(4, 6, 16))[1].item() > 0.5, "independent draws: a high floor"
