"""Built-in procedural shapes with part labels: a dataset that needs no files.

Every shape is a set of named parts, each made of primitive surfaces (boxes, cylinders/cones,
ellipsoids, tori) sampled uniformly by area. Proportions, leg styles, fin counts, wing sweep...
are drawn per shape; some shapes lose one side (partial occlusion), all get a little noise.
Coordinates are y-up, in arbitrary units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from act3d.data.base import PartDataset, check_split
from act3d.data.transforms import Item

Vec = tuple[float, float, float]
SPLIT_SEEDS = {"train": 0, "test": 1}


def _orient(a: np.ndarray, b: np.ndarray, c: np.ndarray, axis: int) -> np.ndarray:
    """Points (n, 3) from local coordinates whose third one, ``c``, runs along ``axis``."""
    out = np.empty((len(a), 3))
    first, second = (i for i in range(3) if i != axis)
    out[:, first], out[:, second], out[:, axis] = a, b, c
    return out


def _yaw(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (n, 3) points by ``angle`` about the y axis."""
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


@dataclass(frozen=True)
class Box:
    """Surface of a box of ``size`` at ``center``, turned by ``yaw`` about y."""

    center: Vec
    size: Vec
    yaw: float = 0.0

    @property
    def area(self) -> float:
        sx, sy, sz = self.size
        return 2 * (sx * sy + sy * sz + sx * sz)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sx, sy, sz = self.size
        face_areas = np.array([sy * sz, sx * sz, sx * sy])
        normal_axis = rng.choice(3, size=n, p=face_areas / face_areas.sum())
        u = rng.random((n, 3)) - 0.5
        u[np.arange(n), normal_axis] = rng.integers(0, 2, n) - 0.5
        return _yaw(u * self.size, self.yaw) + self.center


@dataclass(frozen=True)
class Frustum:
    """Surface of a truncated cone along ``axis``: radius ``r0`` at -height/2, ``r1`` at +height/2.

    ``r0 == r1`` is a cylinder, ``r1 == 0`` a cone; ``bottom``/``top`` close the ends.
    """

    center: Vec
    r0: float
    r1: float
    height: float
    axis: int = 1
    bottom: bool = True
    top: bool = True

    def _areas(self) -> np.ndarray:
        lateral = math.pi * (self.r0 + self.r1) * math.hypot(self.height, self.r1 - self.r0)
        return np.array([lateral, self.bottom * math.pi * self.r0**2, self.top * math.pi * self.r1**2])

    @property
    def area(self) -> float:
        return float(self._areas().sum())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        areas = self._areas()
        where = rng.choice(3, size=n, p=areas / areas.sum())
        theta = rng.uniform(0, 2 * math.pi, n)
        u = rng.random(n)
        # Lateral: the radius at a uniform-area point is sqrt((1-u) r0^2 + u r1^2) (inverse CDF).
        radius = np.sqrt((1 - u) * self.r0**2 + u * self.r1**2)
        t = u if self.r0 == self.r1 else (radius - self.r0) / (self.r1 - self.r0)
        rho = np.select([where == 0, where == 1], [radius, self.r0 * np.sqrt(u)], self.r1 * np.sqrt(u))
        c = np.select([where == 0, where == 1], [t - 0.5, -0.5], 0.5) * self.height
        return _orient(rho * np.cos(theta), rho * np.sin(theta), c, self.axis) + self.center


@dataclass(frozen=True)
class Ellipsoid:
    """Surface of an ellipsoid (only its lower half when ``lower_half``); roughly uniform."""

    center: Vec
    radii: Vec
    lower_half: bool = False

    @property
    def area(self) -> float:
        a, b, c = (r**1.6075 for r in self.radii)  # Thomsen's approximation
        return 4 * math.pi * ((a * b + a * c + b * c) / 3) ** (1 / 1.6075) / (2 if self.lower_half else 1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        if self.lower_half:
            d[:, 1] = -np.abs(d[:, 1])
        return d * self.radii + self.center


@dataclass(frozen=True)
class Torus:
    """An arc ``arc`` (radians) of a torus around ``axis`` with radii ``major`` and ``minor``."""

    center: Vec
    major: float
    minor: float
    axis: int = 2
    arc: tuple[float, float] = (0.0, 2 * math.pi)

    @property
    def area(self) -> float:
        return (self.arc[1] - self.arc[0]) * 2 * math.pi * self.major * self.minor

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u, v = rng.uniform(*self.arc, n), rng.uniform(0, 2 * math.pi, n)
        ring = self.major + self.minor * np.cos(v)
        return _orient(ring * np.cos(u), ring * np.sin(u), self.minor * np.sin(v), self.axis) + self.center


Primitive = Box | Frustum | Ellipsoid | Torus
Parts = list[tuple[int, Primitive]]  # (part index within the class, primitive)


def _legs(rng: np.random.Generator, half_w: float, half_d: float, height: float, part: int) -> Parts:
    """Four legs (square or round) under a rectangle, or a pedestal: a pole on a round foot."""
    style = rng.integers(3)
    if style == 2:
        pole, foot = rng.uniform(0.025, 0.05), rng.uniform(0.6, 0.95) * min(half_w, half_d)
        return [
            (part, Frustum((0, height / 2, 0), pole, pole, height, bottom=False, top=False)),
            (part, Frustum((0, 0.02, 0), foot, foot, 0.04)),
        ]
    t, inset = rng.uniform(0.025, 0.06), rng.uniform(0.0, 0.08)
    x, z = half_w - inset - t / 2, half_d - inset - t / 2
    corners = [(sx * x, height / 2, sz * z) for sx in (-1, 1) for sz in (-1, 1)]
    if style == 0:
        return [(part, Box(c, (t, height, t))) for c in corners]
    return [(part, Frustum(c, t / 2, t / 2, height)) for c in corners]


def _chair(rng: np.random.Generator) -> Parts:
    w, d = rng.uniform(0.4, 0.6, 2)
    h, t = rng.uniform(0.38, 0.5), rng.uniform(0.03, 0.08)
    back_h, back_t = rng.uniform(0.3, 0.6), rng.uniform(0.03, 0.07)
    return [
        (0, Box((0, h + t / 2, 0), (w, t, d))),
        (1, Box((0, h + t + back_h / 2, -d / 2 + back_t / 2), (w * rng.uniform(0.7, 1.0), back_h, back_t))),
        *_legs(rng, w / 2, d / 2, h, 2),
    ]


def _table(rng: np.random.Generator) -> Parts:
    h, t = rng.uniform(0.6, 0.8), rng.uniform(0.03, 0.08)
    if rng.random() < 0.5:
        w, d = rng.uniform(0.8, 1.6), rng.uniform(0.5, 1.0)
        top: Primitive = Box((0, h + t / 2, 0), (w, t, d))
        half_w, half_d = w / 2, d / 2
    else:
        r = rng.uniform(0.4, 0.7)
        top = Frustum((0, h + t / 2, 0), r, r, t)
        half_w = half_d = 0.7 * r
    return [(0, top), *_legs(rng, half_w, half_d, h, 1)]


def _lamp(rng: np.random.Generator) -> Parts:
    base_r, base_h = rng.uniform(0.1, 0.2), rng.uniform(0.02, 0.06)
    pole_r, pole_h = rng.uniform(0.01, 0.025), rng.uniform(0.4, 0.9)
    shade_h, shade_r = rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.3)
    return [
        (0, Frustum((0, base_h / 2, 0), base_r, base_r, base_h)),
        (1, Frustum((0, base_h + pole_h / 2, 0), pole_r, pole_r, pole_h, bottom=False)),
        (2, Frustum((0, base_h + pole_h - shade_h / 5, 0), shade_r, shade_r * rng.uniform(0.3, 0.8), shade_h,
                    bottom=False, top=False)),
    ]  # fmt: skip


def _mug(rng: np.random.Generator) -> Parts:
    r, h, flare = rng.uniform(0.12, 0.2), rng.uniform(0.2, 0.4), rng.uniform(1.0, 1.2)
    handle, tube = h * rng.uniform(0.25, 0.35), rng.uniform(0.015, 0.03)
    return [
        (0, Frustum((0, h / 2, 0), r, r * flare, h, top=False)),
        (1, Torus((r * (1 + flare) / 2, h / 2, 0), handle, tube, axis=2, arc=(-math.pi / 2, math.pi / 2))),
    ]


def _airplane(rng: np.random.Generator) -> Parts:
    length, r, nose = rng.uniform(1.5, 2.5), rng.uniform(0.07, 0.14), rng.uniform(0.15, 0.35)
    span, chord, sweep = rng.uniform(1.4, 2.4), rng.uniform(0.2, 0.4), rng.uniform(0.0, 0.5)
    wing_y, wing_z = rng.uniform(-0.5, 0.5) * r, rng.uniform(-0.1, 0.15) * length
    fin_h, fin_c, stabiliser = rng.uniform(0.2, 0.4), rng.uniform(0.15, 0.3), rng.uniform(0.4, 0.8)
    tail_z = -length / 2 + fin_c / 2
    return [
        (0, Frustum((0, 0, 0), r, r, length, axis=2, top=False)),
        (0, Frustum((0, 0, (length + nose) / 2), r, 0.0, nose, axis=2, bottom=False, top=False)),
        *[
            (
                1,
                Box(
                    (s * span / 4, wing_y, wing_z - sweep * span / 4),
                    (span / 2, 0.03, chord),
                    s * math.atan(sweep),
                ),
            )
            for s in (-1, 1)
        ],
        (2, Box((0, r + fin_h / 2, tail_z), (0.03, fin_h, fin_c))),
        (2, Box((0, 0.5 * r, tail_z), (stabiliser, 0.02, 0.8 * fin_c))),
    ]


def _bottle(rng: np.random.Generator) -> Parts:
    r, h, shoulder = rng.uniform(0.1, 0.18), rng.uniform(0.35, 0.7), rng.uniform(0.05, 0.15)
    neck_r, neck_h, cap_h = r * rng.uniform(0.25, 0.45), rng.uniform(0.08, 0.2), rng.uniform(0.03, 0.06)
    top = h + shoulder + neck_h
    return [
        (0, Frustum((0, h / 2, 0), r, r, h, top=False)),
        (0, Frustum((0, h + shoulder / 2, 0), r, neck_r, shoulder, bottom=False, top=False)),
        (1, Frustum((0, h + shoulder + neck_h / 2, 0), neck_r, neck_r, neck_h, bottom=False, top=False)),
        (2, Frustum((0, top + cap_h / 2, 0), 1.15 * neck_r, 1.15 * neck_r, cap_h)),
    ]


def _sofa(rng: np.random.Generator) -> Parts:
    w, d, seat_h = rng.uniform(1.2, 2.2), rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.45)
    back_t, back_h = rng.uniform(0.12, 0.25), rng.uniform(0.3, 0.5)
    arm_w, arm_h = rng.uniform(0.08, 0.2), rng.uniform(0.1, 0.3)
    return [
        (0, Box((0, seat_h / 2, back_t / 2), (w - 2 * arm_w, seat_h, d - back_t))),
        (1, Box((0, (seat_h + back_h) / 2, (back_t - d) / 2), (w, seat_h + back_h, back_t))),
        *[
            (
                2,
                Box(
                    (s * (w - arm_w) / 2, (seat_h + arm_h) / 2, back_t / 2),
                    (arm_w, seat_h + arm_h, d - back_t),
                ),
            )
            for s in (-1, 1)
        ],
    ]


def _car(rng: np.random.Generator) -> Parts:
    length, width, height = rng.uniform(1.6, 2.4), rng.uniform(0.7, 1.0), rng.uniform(0.25, 0.4)
    wheel_r, wheel_w = rng.uniform(0.14, 0.22), rng.uniform(0.08, 0.14)
    cabin_l, cabin_h, cabin_x = (
        length * rng.uniform(0.35, 0.6),
        rng.uniform(0.2, 0.35),
        rng.uniform(-0.15, 0.1),
    )
    floor = 0.8 * wheel_r
    return [
        (0, Box((0, floor + height / 2, 0), (length, height, width))),
        (
            1,
            Box(
                (cabin_x * length, floor + height + cabin_h / 2, 0),
                (cabin_l, cabin_h, width * rng.uniform(0.8, 0.95)),
            ),
        ),
        *[
            (
                2,
                Frustum(
                    (sx * 0.32 * length, wheel_r, sz * (width - wheel_w) / 2),
                    wheel_r,
                    wheel_r,
                    wheel_w,
                    axis=2,
                ),
            )
            for sx in (-1, 1)
            for sz in (-1, 1)
        ],
    ]


def _rocket(rng: np.random.Generator) -> Parts:
    r, h, nose = rng.uniform(0.08, 0.15), rng.uniform(0.8, 1.4), rng.uniform(0.15, 0.4)
    fins, fin_h, fin_w, phase = (
        rng.integers(3, 5),
        rng.uniform(0.15, 0.35),
        rng.uniform(0.1, 0.2),
        rng.uniform(0, 2 * math.pi),
    )
    angles = phase + 2 * math.pi * np.arange(fins) / fins
    return [
        (0, Frustum((0, h / 2, 0), r, r, h, top=False)),
        (1, Frustum((0, h + nose / 2, 0), r, 0.0, nose, bottom=False, top=False)),
        *[
            (
                2,
                Box(
                    ((r + fin_w / 2) * math.cos(a), fin_h / 2, (r + fin_w / 2) * math.sin(a)),
                    (fin_w, fin_h, 0.02),
                    -a,
                ),
            )
            for a in angles
        ],
    ]


def _bowl(rng: np.random.Generator) -> Parts:
    R, foot_h = rng.uniform(0.3, 0.5), rng.uniform(0.02, 0.06)
    depth, foot_r = R * rng.uniform(0.4, 0.8), R * rng.uniform(0.3, 0.5)
    return [
        (0, Ellipsoid((0, foot_h + depth, 0), (R, depth, R), lower_half=True)),
        (1, Frustum((0, foot_h / 2, 0), foot_r, foot_r, foot_h, top=False)),
    ]


def _guitar(rng: np.random.Generator) -> Parts:
    lower, thick = rng.uniform(0.22, 0.32), rng.uniform(0.06, 0.1)
    upper = lower * rng.uniform(0.7, 0.85)
    neck_l, neck_w, head_l = rng.uniform(0.5, 0.8), rng.uniform(0.05, 0.08), rng.uniform(0.12, 0.2)
    upper_y = lower + 0.9 * upper
    neck_y = upper_y + upper
    return [
        (0, Frustum((0, lower, 0), lower, lower, thick, axis=2)),
        (0, Frustum((0, upper_y, 0), upper, upper, thick, axis=2)),
        (1, Box((0, neck_y + neck_l / 2, 0), (neck_w, neck_l, 0.5 * thick))),
        (2, Box((0, neck_y + neck_l + head_l / 2, 0), (1.6 * neck_w, head_l, 0.4 * thick))),
    ]


# class -> (part names, builder)
SHAPES: dict[str, tuple[tuple[str, ...], Callable[[np.random.Generator], Parts]]] = {
    "airplane": (("fuselage", "wings", "tail"), _airplane),
    "bottle": (("body", "neck", "cap"), _bottle),
    "bowl": (("body", "foot"), _bowl),
    "car": (("body", "cabin", "wheels"), _car),
    "chair": (("seat", "back", "legs"), _chair),
    "guitar": (("body", "neck", "head"), _guitar),
    "lamp": (("base", "pole", "shade"), _lamp),
    "mug": (("body", "handle"), _mug),
    "rocket": (("body", "nose", "fins"), _rocket),
    "sofa": (("seat", "back", "arms"), _sofa),
    "table": (("top", "legs"), _table),
}


def generate_shape(
    name: str, rng: np.random.Generator, npoints: int, occlusion: float = 0.25, rotate: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """One random shape of class ``name``: points float32 (npoints, 3) and part indices int64 (npoints,).

    With probability ``occlusion`` 10-30 % of the surface is cut away on one random horizontal
    side; ``rotate`` turns the shape by a random angle about y. Points come shuffled.
    """
    primitives = SHAPES[name][1](rng)
    areas = np.array([p.area for _, p in primitives])
    occluded = rng.random() < occlusion
    total = round(npoints / (1 - rng.uniform(0.1, 0.3))) if occluded else npoints
    counts = rng.multinomial(total, areas / areas.sum())
    points = np.concatenate([p.sample(rng, k) for (_, p), k in zip(primitives, counts, strict=True)])
    parts = np.repeat([part for part, _ in primitives], counts)
    points += rng.normal(scale=rng.uniform(0.002, 0.008) * np.ptp(points, axis=0).max(), size=points.shape)
    if occluded:
        angle = rng.uniform(0, 2 * math.pi)
        depth = points @ np.array([math.cos(angle), 0.0, math.sin(angle)])
        keep = rng.permutation(np.argpartition(depth, npoints - 1)[:npoints])
    else:
        keep = rng.permutation(npoints)
    points = points[keep]
    if rotate:
        points = _yaw(points, rng.uniform(0, 2 * math.pi))
    return points.astype(np.float32), parts[keep].astype(np.int64)


class SyntheticShapes(PartDataset):
    """Procedural shapes of the 11 classes of :data:`SHAPES`, ``num_per_class`` each, with parts.

    Item ``index`` is drawn from the seed ``(seed, split, index)`` alone, so it is the same in every
    run and worker, and train and test never share a seed. ``parts`` are global part ids
    (``part_classes[cls]``, named in ``part_names`` as ``"chair/seat"``). Label =
    ``index // num_per_class``. Default: unit-sphere normalisation; the shapes are generated with
    exactly ``npoints`` points, so no subsampling happens.
    """

    def __init__(
        self,
        split: str,
        npoints: int = 1024,
        num_per_class: int = 100,
        seed: int = 0,
        occlusion: float = 0.25,
        rotate: bool = False,
        sampling: str = "fps",
        normalize: bool = True,
        transform: Callable[[Item], Item] | None = None,
    ) -> None:
        super().__init__(npoints, sampling, normalize, transform)
        check_split(split, list(SPLIT_SEEDS), "SyntheticShapes")
        self.split, self.seed, self.occlusion, self.rotate = split, seed, occlusion, rotate
        self.classes = list(SHAPES)
        self.part_classes, self.part_names = {}, []
        for name, (part_names, _) in SHAPES.items():
            self.part_classes[name] = list(range(len(self.part_names), len(self.part_names) + len(part_names)))
            self.part_names += [f"{name}/{part}" for part in part_names]
        self.labels = np.repeat(np.arange(self.num_classes, dtype=np.int64), num_per_class)

    def _load(self, index: int) -> dict[str, np.ndarray]:
        name = self.classes[self.labels[index]]
        rng = np.random.default_rng([self.seed, SPLIT_SEEDS[self.split], index])
        points, parts = generate_shape(name, rng, self.npoints, self.occlusion, self.rotate)
        return {"points": points, "parts": parts + self.part_classes[name][0]}
