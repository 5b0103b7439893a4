"""Which archs a training step runs. Draws come from a generator seeded by
``(seed, step)``, so every worker and every resumed run draws the same archs."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .arch import Arch, SearchSpace
from .errors import SupernetError

STRATEGIES = ("sandwich", "uniform", "flops-even")
CANDIDATES = 32  # random archs among which flops-even picks the one nearest its target


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def step_archs(space: SearchSpace, strategy: str, num_random: int, seed: int, step: int,
               cost: Callable[[Arch], float] | None = None, share: Sequence[str] = ()) -> list[Arch]:
    """The archs of one step.

    ``sandwich``: [largest, smallest, num_random random]; the first is trained on the
    labels and the rest are distilled from it. ``flops-even``: the same, but each random
    arch is drawn evenly over the cost (FLOPs) range (:func:`cost_even`; needs ``cost``).
    ``uniform`` (SPOS): one random arch, trained on the labels alone. ``share``: scalar
    dimensions drawn once per step, after the archs, and given to every arch of the step,
    the largest and smallest included (:func:`share_values`).
    """
    rng = step_rng(seed, step)
    if strategy == "sandwich":
        archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(num_random)]
    elif strategy == "uniform":
        archs = [space.sample(rng)]
    elif strategy == "flops-even":
        if cost is None:
            raise ValueError("flops-even sampling needs the supernet's cost function (flops)")
        archs = [space.largest(), space.smallest()] + [cost_even(space, cost, rng) for _ in range(num_random)]
    else:
        raise ValueError(f"unknown sampling strategy {strategy!r}; use one of {STRATEGIES}")
    return share_values(space, archs, share, rng) if share else archs


def share_values(space: SearchSpace, archs: list[Arch], names: Sequence[str], rng: np.random.Generator) -> list[Arch]:
    """``archs`` with each dimension in ``names`` set to one uniform draw, the same for all.

    OFA's elastic resolution: every subnet of a step sees the batch at the same, randomly
    drawn resolution (``share=("r",)``), so the largest widths and depths are trained (and
    teach) at every resolution, not only at the largest.
    """
    dims = {d.name: d for d in space.dimensions}
    check_shared(space, names)
    drawn = {name: dims[name].choices[int(rng.integers(0, len(dims[name].choices)))] for name in names}
    return [space.make({**arch.to_dict(), **drawn}) for arch in archs]


def check_shared(space: SearchSpace, names: Sequence[str]) -> None:
    """Each shared name is a scalar dimension of ``space`` (else a one-line error)."""
    dims = {d.name: d for d in space.dimensions}
    for name in names:
        if name not in dims:
            raise SupernetError(f"--share-dims: {name!r} is not a dimension of this space; it has {sorted(dims)}")
        if dims[name].length is not None:
            raise SupernetError(f"--share-dims: {name!r} has {dims[name].length} positions; only single-value "
                                "dimensions (such as a resolution) can be shared by the archs of a step")


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
