"""ball_query against a brute-force NumPy loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from act3d.errors import OpError
from act3d.ops import ball_query


def naive_ball_query(query: np.ndarray, points: np.ndarray, radius: float, k: int) -> np.ndarray:
    """PointNet++ reference: first k indices with d² < r², padded with the first found, else zeros."""
    out = np.zeros((len(query), k), dtype=np.int64)
    for i, q in enumerate(query):
        found = [j for j, p in enumerate(points) if ((q - p) ** 2).sum() < radius**2][:k]
        if found:
            out[i] = found + [found[0]] * (k - len(found))
    return out


@pytest.mark.parametrize(
    ("B", "M", "N", "radius", "k", "seed"),
    [
        (1, 1, 1, 0.1, 1, 0),
        (2, 30, 200, 0.2, 8, 1),
        (3, 50, 500, 0.1, 16, 2),
        (2, 20, 64, 0.5, 64, 3),
        (1, 40, 100, 0.05, 4, 4),
    ],
)
def test_matches_naive_loop(B: int, M: int, N: int, radius: float, k: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    query, points = torch.rand(B, M, 3, generator=gen), torch.rand(B, N, 3, generator=gen)
    idx = ball_query(query, points, radius, k)
    assert idx.shape == (B, M, k) and idx.dtype == torch.int64
    for b in range(B):
        expected = naive_ball_query(query[b].double().numpy(), points[b].double().numpy(), radius, k)
        np.testing.assert_array_equal(idx[b].numpy(), expected)


def test_counts_cover_empty_partial_and_full_balls() -> None:
    points = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [5.0, 0, 0]]])
    query = torch.tensor([[[0.0, 0, 0], [5.0, 0, 0], [9.0, 0, 0]]])
    idx = ball_query(query, points, 0.15, 3)
    assert idx.tolist() == [[[0, 1, 0], [3, 3, 3], [0, 0, 0]]]


def test_heterogeneous_lengths_and_chunking() -> None:
    gen = torch.Generator().manual_seed(5)
    query, points = torch.rand(2, 25, 3, generator=gen), torch.rand(2, 300, 3, generator=gen)
    q_len, p_len = torch.tensor([25, 10]), torch.tensor([120, 300])
    idx = ball_query(query, points, 0.25, 6, q_len, p_len)
    for b in range(2):
        alone = ball_query(query[b : b + 1, : q_len[b]], points[b : b + 1, : p_len[b]], 0.25, 6)
        torch.testing.assert_close(idx[b, : q_len[b]], alone[0])
        assert (idx[b, q_len[b] :] == 0).all()
    tiny = ball_query(query, points, 0.25, 6, q_len, p_len, memory_budget_bytes=1)
    torch.testing.assert_close(tiny, idx, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_equal_upcast_input(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(6)
    query, points = torch.rand(1, 20, 3, generator=gen).to(dtype), torch.rand(1, 100, 3, generator=gen).to(dtype)
    torch.testing.assert_close(ball_query(query, points, 0.3, 5), ball_query(query.double(), points.double(), 0.3, 5))


@pytest.mark.parametrize(
    ("radius", "k", "message"), [(0.0, 2, "radius"), (float("inf"), 2, "radius"), (0.1, 5, "k=5 exceeds")]
)
def test_bad_input_raises(radius: float, k: int, message: str) -> None:
    with pytest.raises(OpError, match=message):
        ball_query(torch.rand(1, 3, 3), torch.rand(1, 4, 3), radius, k)


def test_non_finite_and_empty_raise() -> None:
    with pytest.raises(OpError, match="NaN"):
        ball_query(torch.full((1, 2, 3), float("nan")), torch.rand(1, 4, 3), 0.1, 1)
    with pytest.raises(OpError, match="empty"):
        ball_query(torch.rand(1, 2, 3), torch.rand(1, 0, 3), 0.1, 1)
