"""chamfer_distance against a brute-force NumPy loop and dense autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from act3d.errors import OpError
from act3d.ops import chamfer_distance


def naive_chamfer(a: np.ndarray, b: np.ndarray, norm: int) -> float:
    """One pair of clouds, float64, point by point."""

    def nearest(x: np.ndarray, cloud: np.ndarray) -> float:
        return min(float(((x - y) ** 2).sum()) for y in cloud)

    d_ab = np.array([nearest(x, b) for x in a])
    d_ba = np.array([nearest(y, a) for y in b])
    if norm == 1:
        return (np.sqrt(d_ab).mean() + np.sqrt(d_ba).mean()) / 2
    return d_ab.mean() + d_ba.mean()


def dense_chamfer(a: torch.Tensor, b: torch.Tensor, norm: int) -> torch.Tensor:
    """The full-matrix torch version, for autograd comparisons: (B,) per pair."""
    dist = ((a[:, :, None] - b[:, None]) ** 2).sum(-1)
    d_ab, d_ba = dist.amin(2), dist.amin(1)
    if norm == 1:
        return (d_ab.sqrt().mean(1) + d_ba.sqrt().mean(1)) / 2
    return d_ab.mean(1) + d_ba.mean(1)


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize(("B", "N", "M", "seed"), [(1, 1, 1, 0), (2, 30, 45, 1), (3, 200, 100, 2), (2, 64, 64, 3)])
def test_matches_naive_loop(norm: int, B: int, N: int, M: int, seed: int, method: str) -> None:
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.rand(B, N, 3, generator=gen), torch.randn(B, M, 3, generator=gen)
    per_pair = chamfer_distance(a, b, norm=norm, reduction="none", method=method)
    assert per_pair.shape == (B,) and per_pair.dtype == torch.float32
    expected = [naive_chamfer(a[i].double().numpy(), b[i].double().numpy(), norm) for i in range(B)]
    np.testing.assert_allclose(per_pair.numpy(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chamfer_distance(a, b, norm=norm, method=method), per_pair.mean())
    torch.testing.assert_close(chamfer_distance(a, b, norm=norm, reduction="sum", method=method), per_pair.sum())


def test_identical_clouds_give_zero_and_finite_gradients() -> None:
    a = torch.rand(2, 50, 3, generator=torch.Generator().manual_seed(4), requires_grad=True)
    for norm in (1, 2):
        loss = chamfer_distance(a, a.detach().clone(), norm=norm)
        (grad,) = torch.autograd.grad(loss, a)
        assert loss.item() == 0
        assert torch.isfinite(grad).all() and (grad == 0).all()


@pytest.mark.parametrize("norm", [1, 2])
def test_gradient_matches_dense_autograd(norm: int, method: str) -> None:
    gen = torch.Generator().manual_seed(5)
    a = torch.rand(3, 40, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.rand(3, 25, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(3, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad((chamfer_distance(a, b, norm, reduction="none", method=method) * weights).sum(), (a, b))
    dense = torch.autograd.grad((dense_chamfer(a, b, norm) * weights).sum(), (a, b))
    for got, expected in zip(ours, dense, strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("norm", [1, 2])
def test_gradient_matches_finite_differences(norm: int) -> None:
    gen = torch.Generator().manual_seed(6)
    a = torch.rand(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 7, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: chamfer_distance(x, y, norm), (a, b), eps=1e-7)


def test_heterogeneous_lengths_match_each_pair_alone(method: str) -> None:
    gen = torch.Generator().manual_seed(7)
    a, b = torch.rand(3, 40, 3, generator=gen), torch.rand(3, 30, 3, generator=gen)
    a[:, 20:] = 9.0  # padding far away: would dominate if not masked
    b[:, 10:] = 0.5  # padding inside the cloud: would be found as a neighbour if not masked
    a_len, b_len = torch.tensor([20, 5, 20]), torch.tensor([10, 10, 1])
    for norm in (1, 2):
        per_pair = chamfer_distance(a, b, norm, a_len, b_len, reduction="none", method=method)
        for i in range(3):
            alone = chamfer_distance(a[i : i + 1, : a_len[i]], b[i : i + 1, : b_len[i]], norm, method=method)
            torch.testing.assert_close(per_pair[i], alone)


def test_chunked_equals_unchunked_in_value_and_gradient(method: str) -> None:
    gen = torch.Generator().manual_seed(8)
    a = torch.rand(2, 300, 3, generator=gen, requires_grad=True)
    b = torch.rand(2, 200, 3, generator=gen)
    whole = chamfer_distance(a, b, 1, memory_budget_bytes=2**30, method=method)
    (grad_whole,) = torch.autograd.grad(whole, a)
    tiny = chamfer_distance(a, b, 1, memory_budget_bytes=1, method=method)
    (grad_tiny,) = torch.autograd.grad(tiny, a)
    torch.testing.assert_close(tiny, whole, rtol=0, atol=0)
    torch.testing.assert_close(grad_tiny, grad_whole, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_close_to_float32(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(9)
    a, b = torch.rand(2, 100, 3, generator=gen), torch.rand(2, 80, 3, generator=gen)
    for norm in (1, 2):
        half = chamfer_distance(a.to(dtype), b.to(dtype), norm)
        assert half.dtype == torch.float32
        torch.testing.assert_close(half, chamfer_distance(a, b, norm), rtol=0.02, atol=1e-3)


def test_many_small_clouds_as_in_patch_reconstruction() -> None:
    gen = torch.Generator().manual_seed(10)
    a, b = torch.rand(256, 32, 3, generator=gen), torch.rand(256, 32, 3, generator=gen)
    expected = np.mean([naive_chamfer(a[i].double().numpy(), b[i].double().numpy(), 2) for i in range(0, 256, 51)])
    got = chamfer_distance(a[::51], b[::51], 2)
    np.testing.assert_allclose(got.item(), expected, rtol=1e-5)
    assert torch.isfinite(chamfer_distance(a, b, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": 3}, "norm must be 1 or 2"),
        ({"reduction": "avg"}, "reduction"),
        ({"a_lengths": torch.tensor([0])}, "no empty cloud"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(OpError, match=message):
        chamfer_distance(torch.rand(1, 4, 3), torch.rand(1, 5, 3), **kwargs)


def test_bad_clouds_raise() -> None:
    with pytest.raises(OpError, match="empty"):
        chamfer_distance(torch.rand(1, 0, 3), torch.rand(1, 5, 3))
    with pytest.raises(OpError, match="NaN"):
        chamfer_distance(torch.rand(1, 4, 3), torch.full((1, 5, 3), float("nan")))
    with pytest.raises(OpError, match="batch size"):
        chamfer_distance(torch.rand(2, 4, 3), torch.rand(1, 5, 3))


@pytest.mark.parametrize("side", ["a", "b"])
def test_unchecked_nan_gives_a_nan_loss(side: str, method: str) -> None:
    # With the check off (as in training steps), a diverged point must show as a NaN loss, whichever
    # cloud holds it (in the dense search a NaN in b is a NaN column minimum, which matches no row).
    gen = torch.Generator().manual_seed(5)
    a, b = torch.rand(3, 600, 3, generator=gen), torch.rand(3, 700, 3, generator=gen)
    (a if side == "a" else b)[1, 7, 0] = float("nan")
    loss = chamfer_distance(a, b, norm=1, reduction="none", check_finite=False, method=method)
    assert torch.isnan(loss[1]) and torch.isfinite(loss[[0, 2]]).all()
