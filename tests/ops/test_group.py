"""group against a brute-force NumPy loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from act3d.errors import OpError
from act3d.ops import farthest_point_sample, gather_points, group


def naive_group(points: np.ndarray, centers: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, k, 3)`` offsets of the k nearest points (stable order by distance) and their distances."""
    patches, dists = [], []
    for c in centers:
        dist = ((points - c) ** 2).sum(-1)
        order = np.argsort(dist, kind="stable")[:k]
        patches.append(points[order] - c)
        dists.append(dist[order])
    return np.stack(patches), np.stack(dists)


@pytest.mark.parametrize(("B", "N", "G", "k", "seed"), [(1, 1, 1, 1, 0), (2, 128, 8, 16, 1), (3, 500, 32, 32, 2)])
def test_matches_naive_loop(B: int, N: int, G: int, k: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    points, centers = torch.rand(B, N, 3, generator=gen), torch.rand(B, G, 3, generator=gen)
    patches, idx = group(points, centers, k)
    assert patches.shape == (B, G, k, 3) and idx.shape == (B, G, k)
    torch.testing.assert_close(patches, gather_points(points, idx) - centers[:, :, None])
    for b in range(B):
        expected, dists = naive_group(points[b].double().numpy(), centers[b].double().numpy(), k)
        got = (patches[b].double() ** 2).sum(-1).numpy()
        np.testing.assert_allclose(got, dists, atol=1e-6)  # same distances, nearest first
        unique = np.diff(dists, axis=-1).min(initial=1) > 1e-6  # no near-ties: offsets equal too
        if unique:
            np.testing.assert_allclose(patches[b].numpy(), expected, atol=1e-6)


def test_fps_centres_come_first_with_zero_offset() -> None:
    points = torch.rand(4, 256, 3, generator=torch.Generator().manual_seed(3))
    fps_idx = farthest_point_sample(points, 16)
    patches, idx = group(points, gather_points(points, fps_idx), 32)
    torch.testing.assert_close(idx[..., 0], fps_idx)
    assert (patches[..., 0, :] == 0).all()


def test_heterogeneous_lengths_and_gradient() -> None:
    gen = torch.Generator().manual_seed(4)
    points = torch.rand(2, 60, 3, generator=gen, requires_grad=True)
    centers = torch.rand(2, 5, 3, generator=gen, requires_grad=True)
    lengths = torch.tensor([20, 60])
    patches, idx = group(points, centers, 10, point_lengths=lengths)
    assert int(idx[0].max()) < 20
    alone, _ = group(points[:1, :20], centers[:1], 10)
    torch.testing.assert_close(patches[:1], alone)
    patches.sum().backward()
    assert centers.grad.eq(-10).all()  # each centre is subtracted from its 10 neighbours
    assert points.grad[0, 20:].eq(0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_keep_their_dtype(dtype: torch.dtype) -> None:
    points = torch.rand(1, 100, 3, generator=torch.Generator().manual_seed(5))
    patches, _ = group(points.to(dtype), points[:, :4].to(dtype), 8)
    assert patches.dtype == dtype
    ref, _ = group(points, points[:, :4], 8)
    torch.testing.assert_close(patches.float(), ref, atol=0.02, rtol=0)


def test_bad_input_raises() -> None:
    with pytest.raises(OpError, match="k=9 exceeds the cloud size 8"):
        group(torch.rand(1, 8, 3), torch.rand(1, 2, 3), 9)
    with pytest.raises(OpError, match="NaN"):
        group(torch.rand(1, 8, 3), torch.full((1, 2, 3), float("nan")), 2)
