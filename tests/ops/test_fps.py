"""farthest_point_sample and gather_points against a brute-force NumPy loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from act3d.errors import OpError
from act3d.ops import farthest_point_sample, gather_points


def naive_fps(cloud: np.ndarray, n: int, first: int = 0) -> np.ndarray:
    """Textbook FPS in float64: next pick = farthest unpicked point, lowest index among ties."""
    picked = [first]
    min_dist = np.full(len(cloud), np.inf)
    for _ in range(n - 1):
        min_dist = np.minimum(min_dist, ((cloud - cloud[picked[-1]]) ** 2).sum(-1))
        candidates = np.where(np.isin(np.arange(len(cloud)), picked), -np.inf, min_dist)
        picked.append(int(np.argmax(candidates)))
    return np.array(picked)


def assert_valid_fps(cloud: np.ndarray, picked: np.ndarray, atol: float = 1e-6) -> None:
    """Each pick (after the first) is at the largest distance from the earlier picks, up to ``atol``."""
    assert len(set(picked.tolist())) == len(picked)
    for i in range(1, len(picked)):
        dist = ((cloud[:, None] - cloud[picked[:i]][None]) ** 2).sum(-1).min(1)
        dist[picked[:i]] = -np.inf
        assert dist[picked[i]] >= dist.max() - atol


@pytest.mark.parametrize(("B", "N", "n", "seed"), [(1, 1, 1, 0), (2, 50, 10, 1), (3, 257, 64, 2), (4, 1000, 32, 3)])
def test_matches_naive_loop(B: int, N: int, n: int, seed: int, method: str) -> None:
    points = torch.rand(B, N, 3, generator=torch.Generator().manual_seed(seed))
    idx = farthest_point_sample(points, n, method=method)
    assert idx.shape == (B, n) and idx.dtype == torch.int64
    for b in range(B):
        np.testing.assert_array_equal(idx[b].numpy(), naive_fps(points[b].double().numpy(), n))


def test_n_equal_to_cloud_size_is_a_permutation(method: str) -> None:
    points = torch.rand(3, 40, 3, generator=torch.Generator().manual_seed(0))
    idx = farthest_point_sample(points, 40, method=method)
    for row in idx:
        assert sorted(row.tolist()) == list(range(40))


def test_duplicate_points_still_give_distinct_indices(method: str) -> None:
    # 5 distinct positions, each 4 times: once the 5 are picked every distance is 0 and ties go
    # to the lowest unpicked index; the picks stay distinct and valid.
    base = torch.rand(1, 5, 3, generator=torch.Generator().manual_seed(1))
    points = base.repeat(1, 4, 1)
    idx = farthest_point_sample(points, 20, method=method)
    assert sorted(idx[0].tolist()) == list(range(20))
    assert sorted(idx[0, :5].remainder(5).tolist()) == list(range(5))
    np.testing.assert_array_equal(idx[0].numpy(), naive_fps(points[0].double().numpy(), 20))
    assert_valid_fps(points[0].double().numpy(), idx[0].numpy())


def test_all_points_identical(method: str) -> None:
    idx = farthest_point_sample(torch.ones(2, 6, 3), 6, method=method)
    assert idx.tolist() == [list(range(6))] * 2


def test_heterogeneous_lengths_match_each_cloud_alone(method: str) -> None:
    gen = torch.Generator().manual_seed(2)
    lengths = torch.tensor([30, 64, 7])
    points = torch.rand(3, 64, 3, generator=gen)
    points[0, 30:] = 100.0  # padding far away: would be picked at once if not masked
    points[2, 7:] = -100.0
    idx = farthest_point_sample(points, 7, lengths=lengths, method=method)
    for b, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(idx[b], farthest_point_sample(points[b : b + 1, :length], 7, method=method)[0])
        assert int(idx[b].max()) < length


def test_n_equal_to_each_length_is_a_permutation_of_the_valid_points(method: str) -> None:
    points = torch.rand(2, 10, 3, generator=torch.Generator().manual_seed(3))
    idx = farthest_point_sample(points, 6, lengths=torch.tensor([6, 10]), method=method)
    assert sorted(idx[0].tolist()) == list(range(6))


def test_random_start_is_reproducible_and_respects_lengths(method: str) -> None:
    points = torch.rand(8, 50, 3, generator=torch.Generator().manual_seed(4))
    lengths = torch.tensor([1, 2, 3, 50, 50, 50, 50, 5])
    first = farthest_point_sample(
        points, 1, lengths, start="random", generator=torch.Generator().manual_seed(9), method=method
    )
    again = farthest_point_sample(
        points, 1, lengths, start="random", generator=torch.Generator().manual_seed(9), method=method
    )
    torch.testing.assert_close(first, again)
    assert (first[:, 0] < lengths).all()
    starts = {
        int(
            farthest_point_sample(
                points[3:4], 1, start="random", generator=torch.Generator().manual_seed(s), method=method
            )
        )
        for s in range(10)
    }
    assert len(starts) > 1
    idx = farthest_point_sample(points, 3, lengths.clamp(min=3), start="random", method=method)
    for b in range(8):
        cloud = points[b, : max(3, int(lengths[b]))].double().numpy()
        np.testing.assert_array_equal(idx[b].numpy(), naive_fps(cloud, 3, int(idx[b, 0])))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes(dtype: torch.dtype, method: str) -> None:
    points = torch.rand(2, 200, 3, generator=torch.Generator().manual_seed(5)).to(dtype)
    idx = farthest_point_sample(points, 16, method=method)
    # computed in float32 (float64) from the same values: identical to upcasting first
    torch.testing.assert_close(idx, farthest_point_sample(points.double(), 16, method=method))
    for b in range(2):
        assert_valid_fps(points[b].double().numpy(), idx[b].numpy())


@pytest.mark.parametrize(
    ("points", "n", "lengths", "message"),
    [
        (torch.rand(2, 5), 1, None, r"shape \(B, N, 3\)"),
        (torch.rand(2, 5, 2), 1, None, r"shape \(B, N, 3\)"),
        (torch.rand(2, 0, 3), 1, None, "empty"),
        (torch.rand(0, 4, 3), 1, None, "empty"),
        (torch.randint(0, 5, (1, 4, 3)), 1, None, "float"),
        (torch.rand(1, 4, 3), 5, None, "n=5 exceeds the cloud size 4"),
        (torch.rand(1, 4, 3), 0, None, "at least 1"),
        (torch.rand(2, 4, 3), 3, torch.tensor([4, 2]), r"n=3 exceeds the size of cloud 1 \(2 points\)"),
        (torch.rand(2, 4, 3), 1, torch.tensor([4, 0]), "no empty cloud"),
        (torch.rand(2, 4, 3), 1, torch.tensor([4, 5]), r"\[1, 4\]"),
        (torch.rand(2, 4, 3), 1, torch.tensor([4.0, 2.0]), "integer"),
        (torch.rand(2, 4, 3), 1, torch.tensor([4]), "integer tensor of shape"),
    ],
)
def test_bad_input_raises(points: torch.Tensor, n: int, lengths: torch.Tensor | None, message: str) -> None:
    with pytest.raises(OpError, match=message):
        farthest_point_sample(points, n, lengths)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_raises(bad: float) -> None:
    points = torch.rand(2, 4, 3)
    points[1, 2, 0] = bad
    with pytest.raises(OpError, match="NaN or Inf"):
        farthest_point_sample(points, 2)
    farthest_point_sample(points, 2, check_finite=False)  # skipped on request (result unspecified)


def test_bad_start_raises() -> None:
    with pytest.raises(OpError, match="start"):
        farthest_point_sample(torch.rand(1, 4, 3), 2, start="last")  # type: ignore[arg-type]
    with pytest.raises(OpError, match="method"):
        farthest_point_sample(torch.rand(1, 4, 3), 2, method="fast")  # type: ignore[arg-type]


def test_buckets_on_clustered_clouds_of_many_buckets() -> None:
    # Clusters of very different density, a cloud size that is not a multiple of the bucket size
    # and a padded cloud: the bucket bounds must never skip a point whose distance changes.
    gen = torch.Generator().manual_seed(7)
    centres = torch.rand(2, 6, 3, generator=gen) * 10
    spread = torch.tensor([0.01, 0.1, 1.0, 0.001, 0.5, 2.0]).repeat_interleave(150)[None, :, None]
    points = centres.repeat_interleave(150, dim=1) + spread * torch.randn(2, 900, 3, generator=gen)
    lengths = torch.tensor([900, 611])
    idx = farthest_point_sample(points, 150, lengths, method="buckets")
    torch.testing.assert_close(idx, farthest_point_sample(points, 150, lengths, method="dense"))
    for b in range(2):
        cloud = points[b, : int(lengths[b])].double().numpy()
        np.testing.assert_array_equal(idx[b].numpy(), naive_fps(cloud, 150))


def test_gather_points() -> None:
    points = torch.rand(2, 10, 4, requires_grad=True)
    idx = torch.tensor([[[1, 2], [3, 3]], [[0, 9], [5, 1]]])
    out = gather_points(points, idx)
    assert out.shape == (2, 2, 2, 4)
    torch.testing.assert_close(out[1, 0, 1], points[1, 9])
    out.sum().backward()
    assert points.grad[0, 3].eq(2).all() and points.grad[0, 0].eq(0).all()
    with pytest.raises(OpError, match="int64"):
        gather_points(points, idx.int())
    with pytest.raises(OpError, match=r"\(B, N, C\)"):
        gather_points(points[0], idx)


@pytest.mark.parametrize("seed", range(8))
def test_buckets_pick_the_farthest_point_on_random_configurations(seed: int) -> None:
    # Random sizes, padding and shapes (uniform, on a grid with ties, flat, duplicated): every pick
    # of the bucketed FPS is a farthest point (up to rounding), and it agrees with the dense one.
    gen = torch.Generator().manual_seed(200 + seed)
    B, N = 2, int(torch.randint(70, 700, (1,), generator=gen))
    points = torch.rand(B, N, 3, generator=gen)
    if seed % 4 == 1:
        points = torch.randint(0, 5, (B, N, 3), generator=gen).float()
    elif seed % 4 == 2:
        points[..., 1] = 0.25
    elif seed % 4 == 3:
        points = points[:, torch.randint(0, 40, (N,), generator=gen)]
    lengths = torch.randint(N // 2, N + 1, (B,), generator=gen)
    n = int(torch.randint(1, min(100, int(lengths.min())) + 1, (1,), generator=gen))
    picks = {
        method: farthest_point_sample(
            points, n, lengths, start="random", generator=torch.Generator().manual_seed(seed), method=method
        )
        for method in ("buckets", "dense")
    }
    for b in range(B):
        assert_valid_fps(points[b, : lengths[b]].double().numpy(), picks["buckets"][b].numpy(), atol=1e-5)
    torch.testing.assert_close(picks["buckets"], picks["dense"])


def naive_official_fps(cloud: np.ndarray, n: int) -> np.ndarray:
    """The official CUDA kernel's rule, one point at a time: start at 0, never pick ``|p|² <= 1e-3``."""
    picked, min_dist = [0], np.full(len(cloud), np.inf)
    for _ in range(n - 1):
        best, best_index = -1.0, 0
        for k, point in enumerate(cloud):
            if (point**2).sum() <= 1e-3:
                continue
            min_dist[k] = min(min_dist[k], ((point - cloud[picked[-1]]) ** 2).sum())
            if min_dist[k] > best:
                best, best_index = min_dist[k], k
        picked.append(best_index)
    return np.array(picked)


def _clouds_with_points_at_the_origin(B: int, N: int, seed: int) -> torch.Tensor:
    """Points on the unit sphere, a fifth of them (point 0 of cloud 0 among them) moved within 0.02 of 0:
    once the sphere is sampled more finely than its radius, plain FPS picks the ones at the origin."""
    gen = torch.Generator().manual_seed(seed)
    points = torch.nn.functional.normalize(torch.randn(B, N, 3, generator=gen), dim=-1)
    near = torch.rand(B, N, generator=gen) < 0.2
    near[0, 0] = True
    return torch.where(near[..., None], points * 0.01, points)


@pytest.mark.parametrize(("B", "N", "n"), [(3, 60, 12), (2, 300, 40)])
def test_skip_near_origin_matches_the_official_kernel(B: int, N: int, n: int, method: str) -> None:
    points = _clouds_with_points_at_the_origin(B, N, seed=N)
    idx = farthest_point_sample(points, n, method=method, skip_near_origin=True)
    plain = farthest_point_sample(points, n, method=method)
    for b in range(B):
        np.testing.assert_array_equal(idx[b].numpy(), naive_official_fps(points[b].double().numpy(), n))
    near = points.square().sum(-1) <= 1e-3
    assert not near.gather(1, idx[:, 1:]).any(), "no centre after the first may lie near the origin"
    assert near.gather(1, plain[:, 1:]).any(), "the test clouds must make the flag matter"


def test_skip_near_origin_with_padding(method: str) -> None:
    points = _clouds_with_points_at_the_origin(2, 80, seed=7)
    lengths = torch.tensor([80, 50])
    idx = farthest_point_sample(points, 10, lengths=lengths, method=method, skip_near_origin=True)
    np.testing.assert_array_equal(idx[1].numpy(), naive_official_fps(points[1, :50].double().numpy(), 10))
