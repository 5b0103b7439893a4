"""Which archs a training step runs. Draws come from a generator seeded by
``(seed, step)``, so every worker and every resumed run draws the same archs."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .arch import Arch, SearchSpace

STRATEGIES = ("sandwich", "uniform", "flops-even")
CANDIDATES = 32  # random archs among which flops-even picks the one nearest its target


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def step_archs(space: SearchSpace, strategy: str, num_random: int, seed: int, step: int,
               cost: Callable[[Arch], float] | None = None) -> list[Arch]:
    """The archs of one step.

    ``sandwich``: [largest, smallest, num_random random]; the first is trained on the
    labels and the rest are distilled from it. ``flops-even``: the same, but each random
    arch is drawn evenly over the cost (FLOPs) range (:func:`cost_even`; needs ``cost``).
    ``uniform`` (SPOS): one random arch, trained on the labels alone.
    """
    rng = step_rng(seed, step)
    if strategy == "sandwich":
        return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(num_random)]
    if strategy == "uniform":
        return [space.sample(rng)]
    if strategy == "flops-even":
        if cost is None:
            raise ValueError("flops-even sampling needs the supernet's cost function (flops)")
        return [space.largest(), space.smallest()] + [cost_even(space, cost, rng) for _ in range(num_random)]
    raise ValueError(f"unknown sampling strategy {strategy!r}; use one of {STRATEGIES}")


def cost_even(space: SearchSpace, cost: Callable[[Arch], float], rng: np.random.Generator,
              candidates: int = CANDIDATES) -> Arch:
    """A random arch spread evenly over the cost range rather than where uniform draws pile up.

    Draw a target ``t ~ U(cost(smallest), cost(largest))``, then ``candidates`` uniform archs,
    and keep ``argmin_a |cost(a) - t|`` (complexity-aware sampling, as in ShiftNAS / a FLOPs
    bucket drawn uniformly, then an arch in it).
    """
    low, high = cost(space.smallest()), cost(space.largest())
    target = rng.uniform(low, high)
    pool = [space.sample(rng) for _ in range(candidates)]
    return min(pool, key=lambda a: abs(cost(a) - target))
