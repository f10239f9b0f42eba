"""Per-iteration schedules of stage I: Gumbel temperature and KL weight (docs/method.md)."""

from __future__ import annotations

import math

from act3d.util.config import Strict


class CosineRamp(Strict):
    """``start`` for ``delay`` iterations, then a cosine from ``start`` to ``target`` over ``steps``, then held.

    Paper: temperature 1 → 0.0625 over 100k iterations; KL weight 0 for 10k, then 0 → 0.1 over 100k.
    """

    start: float
    target: float
    steps: int
    delay: int = 0

    def __call__(self, iteration: int) -> float:
        t = iteration - self.delay
        if t <= 0:
            return self.start
        if t >= self.steps:
            return self.target
        return self.target + (self.start - self.target) * (1 + math.cos(math.pi * t / self.steps)) / 2


class TemperatureSchedule(CosineRamp):
    """Gumbel-softmax temperature: cosine 1 → 0.0625 over 100k iterations (the paper)."""

    start: float = 1.0
    target: float = 0.0625
    steps: int = 100_000


class KLWeightSchedule(CosineRamp):
    """Weight of the codebook KL term: 0 for 10k iterations, then cosine 0 → 0.1 over 100k (the paper)."""

    start: float = 0.0
    target: float = 0.1
    steps: int = 100_000
    delay: int = 10_000


class DiversityWeightSchedule(CosineRamp):
    """Weight of the batch code-diversity term (not in the paper: 0, off; docs/method.md, stage I)."""

    start: float = 0.0
    target: float = 0.0
    steps: int = 1
