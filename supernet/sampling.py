"""Which archs a training step runs. Draws come from a generator seeded by
``(seed, step)``, so every worker and every resumed run draws the same archs."""
from __future__ import annotations

import numpy as np

from .arch import Arch, SearchSpace

STRATEGIES = ("sandwich", "uniform")


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def step_archs(space: SearchSpace, strategy: str, num_random: int, seed: int, step: int) -> list[Arch]:
    """The archs of one step.

    ``sandwich``: [largest, smallest, num_random random]; the first is trained on the
    labels and the rest are distilled from it. ``uniform`` (SPOS): one random arch,
    trained on the labels alone.
    """
    rng = step_rng(seed, step)
    if strategy == "sandwich":
        return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(num_random)]
    if strategy == "uniform":
        return [space.sample(rng)]
    raise ValueError(f"unknown sampling strategy {strategy!r}; use one of {STRATEGIES}")
