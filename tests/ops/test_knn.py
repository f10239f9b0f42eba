"""knn against a brute-force NumPy loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from act3d.errors import ConfigError, OpError
from act3d.ops import knn, set_memory_budget
from act3d.ops.knn import nearest_both_ways
from act3d.ops.memory import DEFAULT_MEMORY_BUDGET, ENV_VAR, get_memory_budget


def naive_knn(query: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """``(M, k)`` ascending squared distances of the k nearest points, float64, one query at a time."""
    out = np.empty((len(query), k))
    for i, q in enumerate(query):
        dist = [float(((q - p) ** 2).sum()) for p in points]
        out[i] = sorted(dist)[:k]
    return out


def assert_matches_naive(
    query: torch.Tensor, points: torch.Tensor, k: int, dists: torch.Tensor, idx: torch.Tensor, atol: float = 1e-6
) -> None:
    """Distances equal the naive ones and the indices point at points with exactly those distances.

    Ties make indices ambiguous, so indices are checked through the distances they give.
    """
    q, p = query.double().numpy(), points.double().numpy()
    expected = naive_knn(q, p, k)
    np.testing.assert_allclose(dists.double().numpy(), expected, atol=atol, rtol=1e-5)
    np.testing.assert_allclose(((q[:, None] - p[idx.numpy()]) ** 2).sum(-1), expected, atol=atol, rtol=1e-5)
    assert all(len(set(row)) == k for row in idx.tolist())


@pytest.mark.parametrize(
    ("B", "M", "N", "k", "seed"),
    [
        (1, 1, 1, 1, 0),
        (2, 17, 50, 1, 1),
        (3, 64, 300, 16, 2),
        (2, 40, 1024, 32, 3),
        (1, 8, 9, 9, 4),
        (2, 5, 70, 3, 5),
        (2, 30, 2000, 1, 6),  # group pre-selection with k=1, columns padded to a multiple of the group
    ],
)
def test_matches_naive_loop(B: int, M: int, N: int, k: int, seed: int, method: str) -> None:
    gen = torch.Generator().manual_seed(seed)
    query, points = torch.rand(B, M, 3, generator=gen), torch.randn(B, N, 3, generator=gen)
    dists, idx = knn(query, points, k, method=method)
    assert dists.shape == idx.shape == (B, M, k)
    assert dists.dtype == torch.float32 and idx.dtype == torch.int64
    assert (dists[..., 1:] >= dists[..., :-1]).all() and (dists >= 0).all()
    for b in range(B):
        assert_matches_naive(query[b], points[b], k, dists[b], idx[b])


@pytest.mark.parametrize("k", [1, 20])
def test_buckets_on_clustered_clouds_and_far_queries(k: int) -> None:
    # Clusters of very different density, queries far outside the cloud, padded clouds and sizes
    # that are not multiples of the bucket size: no skipped bucket may hold a neighbour.
    gen = torch.Generator().manual_seed(11)
    centres = torch.rand(2, 5, 3, generator=gen) * 10
    spread = torch.tensor([0.001, 0.03, 0.3, 1.0, 3.0]).repeat_interleave(150)[None, :, None]
    points = centres.repeat_interleave(150, dim=1) + spread * torch.randn(2, 750, 3, generator=gen)
    query = torch.cat([points[:, ::7], 30 * torch.randn(2, 40, 3, generator=gen)], dim=1)
    lengths = torch.tensor([750, 333])
    dists, idx = knn(query, points, k, point_lengths=lengths, method="buckets")
    for b in range(2):
        assert int(idx[b].max()) < lengths[b]
        # coordinates up to ~20 from the origin point: near-ties within float32 rounding of the
        # expanded formula (~1e-7 x 20²) may pick either point, as in the dense path
        assert_matches_naive(query[b], points[b, : lengths[b]], k, dists[b], idx[b], atol=1e-4)


@pytest.mark.parametrize("scale", [0.0, 1e-20, 1e6])
def test_buckets_on_degenerate_extents(scale: float) -> None:
    # A cloud of one position (no grid at all), a tiny one and a wide one: same as dense.
    points = 3.0 + scale * torch.rand(2, 300, 3, generator=torch.Generator().manual_seed(12))
    for k in (1, 7):
        dense = knn(points[:, :50], points, k, method="dense")[0]
        torch.testing.assert_close(knn(points[:, :50], points, k, method="buckets")[0], dense)


def test_far_from_origin_keeps_precision(method: str) -> None:
    # the expanded formula on raw coordinates ~1e4 would lose all float32 precision at this scale
    gen = torch.Generator().manual_seed(6)
    points = 1e4 + torch.rand(1, 200, 3, generator=gen)
    dists, idx = knn(points[:, :20], points, 4, method=method)
    assert_matches_naive(points[0, :20], points[0], 4, dists[0], idx[0])


def test_queries_in_the_cloud_find_themselves_first(method: str) -> None:
    points = torch.rand(2, 100, 3, generator=torch.Generator().manual_seed(7))
    dists, idx = knn(points, points, 2, method=method)
    assert idx[..., 0].tolist() == [list(range(100))] * 2
    assert (dists[..., 0] == 0).all()


def test_ties_with_duplicate_points(method: str) -> None:
    base = torch.rand(1, 6, 3, generator=torch.Generator().manual_seed(8))
    points = torch.cat([base, base, base], 1)  # every distance appears three times
    dists, idx = knn(base, points, 5, method=method)
    assert_matches_naive(base[0], points[0], 5, dists[0], idx[0])
    assert (dists[..., :3] == 0).all()
    assert sorted(idx[0, 0, :3].tolist()) == [0, 6, 12]


def test_k_equal_to_cloud_size_returns_every_point(method: str) -> None:
    gen = torch.Generator().manual_seed(9)
    query, points = torch.rand(2, 5, 3, generator=gen), torch.rand(2, 33, 3, generator=gen)
    dists, idx = knn(query, points, 33, method=method)
    assert (idx.sort(-1).values == torch.arange(33)).all()
    assert_matches_naive(query[1], points[1], 33, dists[1], idx[1])


def test_heterogeneous_lengths_match_each_cloud_alone(method: str) -> None:
    gen = torch.Generator().manual_seed(10)
    query, points = torch.rand(3, 12, 3, generator=gen), torch.rand(3, 90, 3, generator=gen)
    points[:, 40:] = 0.5  # padding inside the cloud: would be found if not masked
    q_len, p_len = torch.tensor([12, 3, 7]), torch.tensor([40, 5, 90])
    dists, idx = knn(query, points, 5, query_lengths=q_len, point_lengths=p_len, method=method)
    for b in range(3):
        d_alone, i_alone = knn(query[b : b + 1, : q_len[b]], points[b : b + 1, : p_len[b]], 5, method=method)
        torch.testing.assert_close(dists[b, : q_len[b]], d_alone[0])
        torch.testing.assert_close(idx[b, : q_len[b]], i_alone[0])
        assert (dists[b, q_len[b] :] == 0).all() and (idx[b, q_len[b] :] == 0).all()


def test_chunked_equals_unchunked(method: str) -> None:
    gen = torch.Generator().manual_seed(11)
    query, points = torch.rand(2, 50, 3, generator=gen), torch.rand(2, 700, 3, generator=gen)
    lengths = torch.tensor([700, 333])
    whole = knn(query, points, 8, point_lengths=lengths, memory_budget_bytes=2**30, method=method)
    tiny = knn(query, points, 8, point_lengths=lengths, memory_budget_bytes=1, method=method)  # one query per chunk
    odd = knn(query, points, 8, point_lengths=lengths, memory_budget_bytes=7 * 2 * 704 * 4, method=method)  # 7 queries
    for other in (tiny, odd):
        torch.testing.assert_close(other[0], whole[0], rtol=0, atol=0)
        torch.testing.assert_close(other[1], whole[1], rtol=0, atol=0)


def test_memory_budget_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_memory_budget() == DEFAULT_MEMORY_BUDGET
    monkeypatch.setenv(ENV_VAR, "1024")
    assert get_memory_budget() == 1024
    set_memory_budget(4096)
    try:
        assert get_memory_budget() == 4096
        query = torch.rand(1, 10, 3)
        torch.testing.assert_close(knn(query, query, 3), knn(query, query, 3, memory_budget_bytes=2**30))
    finally:
        set_memory_budget(None)
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(ConfigError, match=ENV_VAR):
        get_memory_budget()
    with pytest.raises(OpError, match="positive"):
        set_memory_budget(0)
    with pytest.raises(OpError, match="positive"):
        knn(query, query, 1, memory_budget_bytes=-1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_close_to_float32(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(12)
    query, points = torch.rand(2, 30, 3, generator=gen), torch.rand(2, 200, 3, generator=gen)
    dists, idx = knn(query.to(dtype), points.to(dtype), 6)
    assert dists.dtype == torch.float32
    # computed in float32 from the same (rounded) values: identical to upcasting first
    up_d, up_i = knn(query.to(dtype).float(), points.to(dtype).float(), 6)
    torch.testing.assert_close(dists, up_d, rtol=0, atol=0)
    torch.testing.assert_close(idx, up_i, rtol=0, atol=0)
    torch.testing.assert_close(dists, knn(query, points, 6)[0], rtol=0, atol=0.02)


def test_float64_and_gradient_against_dense_autograd(method: str) -> None:
    gen = torch.Generator().manual_seed(13)
    query = torch.rand(2, 15, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    points = torch.rand(2, 40, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    dists, idx = knn(query, points, 4, method=method)
    assert dists.dtype == torch.float64
    weights = torch.rand(dists.shape, generator=gen, dtype=torch.float64)
    (dists * weights).sum().backward()
    dense = ((query[:, :, None] - points[:, None]) ** 2).sum(-1)  # (B, M, N)
    expected = dense.gather(-1, idx)
    torch.testing.assert_close(dists, expected)
    grads = torch.autograd.grad((expected * weights).sum(), (query, points))
    torch.testing.assert_close(query.grad, grads[0])
    torch.testing.assert_close(points.grad, grads[1])


@pytest.mark.parametrize(
    ("query", "points", "k", "lengths", "message"),
    [
        (torch.rand(1, 3, 3), torch.rand(1, 4, 3), 5, None, "k=5 exceeds the cloud size 4"),
        (torch.rand(2, 3, 3), torch.rand(2, 4, 3), 3, torch.tensor([4, 2]), "k=3 exceeds the size of cloud 1"),
        (torch.rand(1, 3, 3), torch.rand(1, 4, 3), 0, None, "at least 1"),
        (torch.rand(1, 0, 3), torch.rand(1, 4, 3), 1, None, "query is empty"),
        (torch.rand(1, 3, 3), torch.rand(1, 0, 3), 1, None, "points is empty"),
        (torch.rand(1, 3, 3), torch.rand(1, 4, 3), 1, torch.tensor([0]), "no empty cloud"),
        (torch.rand(1, 3, 2), torch.rand(1, 4, 3), 1, None, r"query must have shape \(B, N, 3\)"),
        (torch.rand(2, 3, 3), torch.rand(1, 4, 3), 1, None, "batch size"),
    ],
)
def test_bad_input_raises(
    query: torch.Tensor, points: torch.Tensor, k: int, lengths: torch.Tensor | None, message: str
) -> None:
    with pytest.raises(OpError, match=message):
        knn(query, points, k, point_lengths=lengths)


def test_unknown_method_raises() -> None:
    with pytest.raises(OpError, match="method"):
        knn(torch.rand(1, 4, 3), torch.rand(1, 4, 3), 1, method="kdtree")  # type: ignore[arg-type]


def test_non_finite_raises() -> None:
    query, points = torch.rand(1, 3, 3), torch.rand(1, 4, 3)
    points[0, 1, 1] = float("nan")
    with pytest.raises(OpError, match="points contains NaN or Inf"):
        knn(query, points, 1)
    query[0, 0, 0] = float("-inf")
    with pytest.raises(OpError, match="query contains NaN or Inf"):
        knn(query, points.nan_to_num(), 1)


@pytest.mark.parametrize("seed", range(12))
def test_buckets_equal_dense_on_random_configurations(seed: int) -> None:
    # Random sizes, k, padding and shapes (uniform, clustered, flat, duplicated): the bucketed
    # search must return the dense distances (the dense path is checked against the NumPy loop).
    gen = torch.Generator().manual_seed(100 + seed)
    B = int(torch.randint(1, 4, (1,), generator=gen))
    N = int(torch.randint(40, 1500, (1,), generator=gen))
    M = int(torch.randint(1, 1500, (1,), generator=gen))
    points = torch.rand(B, N, 3, generator=gen)
    shape = seed % 4
    if shape == 1:
        points = torch.randint(0, 4, (B, N, 3), generator=gen).float() + 0.01 * points
    elif shape == 2:
        points[..., 2] = 0.5
    elif shape == 3:
        points = points[:, torch.randint(0, 30, (N,), generator=gen)]
    query = torch.cat([points, 2 * torch.rand(B, N, 3, generator=gen) - 0.5], 1)[
        :, torch.randperm(2 * N, generator=gen)[:M]
    ]
    lengths = torch.randint(N // 2, N + 1, (B,), generator=gen)
    k = int(torch.randint(1, min(40, N // 2) + 1, (1,), generator=gen))
    dense = knn(query, points, k, point_lengths=lengths, method="dense")
    buckets = knn(query, points, k, point_lengths=lengths, method="buckets")
    torch.testing.assert_close(buckets[0], dense[0], atol=1e-5, rtol=1e-5)
    assert (buckets[1] < lengths[:, None, None]).all()


@pytest.mark.parametrize("budget", [None, 4096])
def test_nearest_both_ways_dense_equals_two_knn_calls(budget: int | None) -> None:
    # One pass over the a x b blocks gives both directions: the same distances as knn(a, b, 1) and
    # knn(b, a, 1), with padding on both sides, sizes that are not multiples of the selection group
    # and (with a 4 KiB budget) many chunks of a and several column slices in the b -> a step.
    gen = torch.Generator().manual_seed(21)
    a, b = torch.rand(3, 700, 3, generator=gen), torch.randn(3, 555, 3, generator=gen)
    a_lengths, b_lengths = torch.tensor([700, 13, 401]), torch.tensor([555, 554, 1])
    a_to_b, b_to_a = nearest_both_ways(a, b, a_lengths, b_lengths, budget, method="dense")
    expected_ab = knn(a, b, 1, a_lengths, b_lengths, method="dense")[0][..., 0]
    expected_ba = knn(b, a, 1, b_lengths, a_lengths, method="dense")[0][..., 0]
    torch.testing.assert_close(a_to_b, expected_ab, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b_to_a, expected_ba, atol=1e-6, rtol=1e-5)
    for i in range(3):  # and against brute force, valid points only
        valid_a, valid_b = a[i, : a_lengths[i]].double(), b[i, : b_lengths[i]].double()
        full = ((valid_b[:, None] - valid_a[None]) ** 2).sum(-1)
        np.testing.assert_allclose(b_to_a[i, : b_lengths[i]].numpy(), full.amin(1).numpy(), atol=1e-6, rtol=1e-5)
