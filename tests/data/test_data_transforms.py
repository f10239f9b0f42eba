"""Transforms, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from act3d.data.transforms import (
    Compose,
    Jitter,
    RotateUp,
    ScaleAndTranslate,
    Subsample,
    subsample_indices,
)
from act3d.errors import ConfigError
from act3d.ops.normalize import normalize_unit_sphere


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _item(n: int = 20) -> dict[str, torch.Tensor]:
    """Point i is (i, 2i, -i) with part i: alignment is checkable after any reordering."""
    i = torch.arange(n, dtype=torch.float32)
    return {"points": torch.stack([i, 2 * i, -i], 1), "parts": torch.arange(n), "label": torch.tensor(3)}


def test_normalize_unit_sphere_by_hand() -> None:
    out = normalize_unit_sphere(torch.tensor([[0.0, 0, 0], [4, 0, 0], [2, 1, 0], [2, -1, 0]]))
    # centroid (2, 0, 0), farthest points at distance 2
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0, 0], [1, 0, 0], [0, 0.5, 0], [0, -0.5, 0]]))
    batch = normalize_unit_sphere(torch.randn(4, 100, 3) * 7 + 3)
    torch.testing.assert_close(batch.mean(1), torch.zeros(4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.norm(dim=2).amax(1), torch.ones(4))
    assert torch.equal(normalize_unit_sphere(torch.ones(5, 3)), torch.zeros(5, 3))  # one repeated point


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e20, 1e37])
def test_normalize_unit_sphere_matches_float64_at_any_scale(scale: float) -> None:
    points = torch.randn(3, 50, 3, generator=_gen(1), dtype=torch.float64) * scale + 2 * scale
    expected = normalize_unit_sphere(points / scale).float()
    out = normalize_unit_sphere(points.float())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_scale_and_translate_within_bounds() -> None:
    item = {"points": torch.tensor([[0.0, 0, 0], [1, 1, 1]]), "label": torch.tensor(0)}
    t = ScaleAndTranslate(generator=_gen())
    shifts, scales = [], []
    for _ in range(200):
        out = t(item)["points"]
        shifts.append(out[0])  # the origin only moves by the shift
        scales.append(out[1] - out[0])  # (1, 1, 1) gives the per-axis scale
    shifts, scales = torch.stack(shifts), torch.stack(scales)
    assert shifts.abs().max() <= 0.2 and shifts.abs().max() > 0.18
    assert scales.min() >= 2 / 3 - 1e-6 and scales.max() <= 1.5 + 1e-6
    assert (scales[:, 0] != scales[:, 1]).all()  # per axis, not isotropic
    assert torch.equal(item["points"], torch.tensor([[0.0, 0, 0], [1, 1, 1]]))  # input untouched


def test_scale_and_translate_batch() -> None:
    points = torch.zeros(6, 10, 3)
    points[:, 1] = 1
    out = ScaleAndTranslate(0.8, 1.25, 0.1, generator=_gen()).batch(points)
    shift, scale = out[:, 0], out[:, 1] - out[:, 0]
    assert shift.abs().max() <= 0.1 and scale.min() >= 0.8 - 1e-6 and scale.max() <= 1.25 + 1e-6
    assert len(torch.unique(scale[:, 0])) == 6  # one draw per cloud
    torch.testing.assert_close(out[:, 2:], shift[:, None].expand(6, 8, 3))


def test_scale_transforms_normals() -> None:
    item = {"points": torch.zeros(1, 3), "normals": torch.tensor([[1.0, 1.0, 0.0]]) / math.sqrt(2)}
    out = ScaleAndTranslate(generator=_gen(1))(item)
    scale = ScaleAndTranslate(generator=_gen(1))._draw(1)[0][0]
    expected = torch.tensor([1 / scale[0], 1 / scale[1], 0.0])
    torch.testing.assert_close(out["normals"][0], expected / expected.norm())


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_rotate_up_preserves_norms_and_up_coordinate(axis: str) -> None:
    item = {"points": torch.randn(50, 3), "normals": torch.randn(50, 3), "label": torch.tensor(0)}
    out = RotateUp(axis, generator=_gen())(item)
    a = "xyz".index(axis)
    torch.testing.assert_close(out["points"][:, a], item["points"][:, a])
    torch.testing.assert_close(out["points"].norm(dim=1), item["points"].norm(dim=1))
    assert not torch.allclose(out["points"], item["points"])
    # normals turn with the points: angles between points and normals are unchanged
    torch.testing.assert_close((out["points"] * out["normals"]).sum(1), (item["points"] * item["normals"]).sum(1))


def test_rotate_up_by_hand() -> None:
    t = RotateUp("y", generator=_gen(2))
    angle = torch.rand(1, generator=_gen(2)).item() * 2 * math.pi
    out = t({"points": torch.tensor([[0.0, 5.0, 1.0]])})["points"]
    # a rotation by a about y takes (0, 5, 1) to (sin a, 5, cos a)
    torch.testing.assert_close(out[0], torch.tensor([math.sin(angle), 5.0, math.cos(angle)]))


def test_rotate_up_batch() -> None:
    points = torch.randn(5, 30, 3)
    out = RotateUp("y", generator=_gen()).batch(points)
    torch.testing.assert_close(out[..., 1], points[..., 1])
    torch.testing.assert_close(out.norm(dim=2), points.norm(dim=2))
    cos = (out[:, :, [0, 2]] * points[:, :, [0, 2]]).sum(2) / points[:, :, [0, 2]].norm(dim=2) ** 2
    assert cos.std(1).max() < 1e-4 and cos[:, 0].unique().numel() == 5  # one angle per cloud


def test_jitter_is_clipped() -> None:
    item = _item()
    out = Jitter(sigma=0.5, clip=0.05, generator=_gen())(item)
    noise = out["points"] - item["points"]
    assert noise.abs().max() <= 0.05 + 1e-6 and noise.abs().max() > 0.04
    assert torch.equal(out["parts"], item["parts"])


@pytest.mark.parametrize("method", ["random", "first", "fps"])
@pytest.mark.parametrize("n", [7, 20, 33])
def test_subsample_keeps_parts_aligned(method: str, n: int) -> None:
    out = Subsample(n, method, generator=_gen())(_item(20))
    assert out["points"].shape == (n, 3) and out["parts"].shape == (n,)
    torch.testing.assert_close(out["points"][:, 0], out["parts"].float())
    if n >= 20:
        assert set(out["parts"].tolist()) == set(range(20))  # every point kept before any repeat
    else:
        assert len(set(out["parts"].tolist())) == n  # no repeats


def test_fps_spreads_points() -> None:
    points = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [10, 0, 0], [5, 0, 0], [0.2, 0, 0]])
    assert subsample_indices(points, 3, "fps").tolist() == [0, 2, 3]


def test_compose_and_bad_arguments() -> None:
    composed = Compose([Subsample(5, "first"), lambda item: {**item, "points": item["points"] * 2}])
    torch.testing.assert_close(composed(_item())["points"], _item()["points"][:5] * 2)
    with pytest.raises(ConfigError):
        Subsample(5, "poisson")
    with pytest.raises(ConfigError):
        RotateUp("w")
