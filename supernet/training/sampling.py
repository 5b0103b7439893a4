"""Which archs a training step runs. Draws come from a generator seeded by
``(seed, step)``, so every worker and every resumed run draws the same archs."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.space import SearchSpace

STRATEGIES = ("sandwich", "uniform", "flops-even", "worst-up", "largest-random")
SANDWICHES = ("sandwich", "flops-even", "worst-up")  # [largest, smallest, random...] steps
CANDIDATES = 32  # random archs among which flops-even picks the one nearest its target
WORST_OF = 3  # worst-up: equal-cost candidates per random slot, of which the trainer trains the hardest


class Candidates(tuple):
    """A training slot that is not one arch but equal-cost candidates, of which the trainer trains the one
    with the highest loss on the step's batch (``worst-up``); any other member of a step is an :class:`Arch`."""


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def step_archs(space: SearchSpace, strategy: str, num_random: int, seed: int, step: int,
               cost: Callable[[Arch], float] | None = None, share: Sequence[str] = ()) -> list[Arch]:
    """The archs of one step.

    ``sandwich``: [largest, smallest, num_random random]; the first is trained on the
    labels and the rest are distilled from it. ``flops-even``: the same, but each random
    arch is drawn evenly over the cost (FLOPs) range (:func:`cost_even`; needs ``cost``).
    ``uniform`` (SPOS; LoNAS's one sub-adapter per step): one random arch, trained on the labels
    alone. ``largest-random``: [largest, num_random random], the sandwich without its smallest
    member (the random archs cover the small end). ``worst-up``
    (AttentiveNAS): the sandwich, but each random slot is a tuple of ``WORST_OF`` candidates
    near one cost target (:func:`cost_group`, a :class:`Candidates`), of which the trainer trains the one with the
    highest loss on the step's batch.

    ``share``: single-value dimensions drawn once per step, after the archs, and given to
    every arch of the step, the largest and smallest included (:func:`share_values`).
    """
    rng = step_rng(seed, step)
    if strategy == "sandwich":
        archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(num_random)]
    elif strategy == "uniform":
        archs = [space.sample(rng)]
    elif strategy == "largest-random":
        archs = [space.largest()] + [space.sample(rng) for _ in range(num_random)]
    elif strategy in ("flops-even", "worst-up"):
        if cost is None:
            raise ValueError(f"{strategy} sampling needs the supernet's cost function (flops)")
        draw = (lambda: cost_even(space, cost, rng)) if strategy == "flops-even" else \
            (lambda: cost_group(space, cost, rng, WORST_OF))
        archs = [space.largest(), space.smallest()] + [draw() for _ in range(num_random)]
    else:
        raise ValueError(f"unknown sampling strategy {strategy!r}; use one of {STRATEGIES}")
    return share_values(space, archs, share, rng) if share else archs


def share_values(space: SearchSpace, archs: list[Arch], names: Sequence[str], rng: np.random.Generator) -> list[Arch]:
    """``archs`` with each dimension in ``names`` set to one uniform draw, the same for all.

    OFA's elastic resolution: every subnet of a step sees the batch at the same, randomly
    drawn resolution (``share=("r",)``), so the largest widths and depths are trained (and
    teach) at every resolution, not only at the largest. A shared value that makes positions
    active which the arch left inactive (a shared depth, say) fills them: with the largest
    choice in the largest arch, the smallest in the smallest, a uniform draw in the others.
    """
    dims = {d.name: d for d in space.dimensions}
    check_shared(space, names)
    drawn = {name: dims[name].choices[int(rng.integers(0, len(dims[name].choices)))] for name in names}
    largest, smallest = space.largest(), space.smallest()

    def shared(arch: Arch) -> Arch:
        role = -1 if arch == largest else 0 if arch == smallest else None
        return space.make(_filled(space, {**arch.to_dict(), **drawn}, role, rng))
    return [Candidates(map(shared, a)) if isinstance(a, Candidates) else shared(a) for a in archs]


def _filled(space: SearchSpace, values: dict, role: int | None, rng: np.random.Generator) -> dict:
    """``values`` with every active position that holds no valid choice given one: the ordered choice at
    ``role`` (0 smallest, -1 largest), or a uniform draw when ``role`` is None."""
    inactive = space.inactive(values)
    for d in space.dimensions:
        if d.length is None:
            continue
        seq, skip = list(values[d.name]), inactive.get(d.name, set())
        for i, value in enumerate(seq):
            if i not in skip and d.index(value) is None:
                seq[i] = d.ordered_choices()[role] if role is not None else d.choices[int(rng.integers(len(d.choices)))]
        values[d.name] = seq
    return values


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
    return _nearest(space, cost, rng, rng.uniform(low, high), candidates)


def cost_group(space: SearchSpace, cost: Callable[[Arch], float], rng: np.random.Generator, k: int,
               candidates: int = CANDIDATES) -> Candidates:
    """``k`` archs of about one cost: a target ``t ~ U(cost(smallest), cost(largest))``, then
    for each of the ``k`` its own ``candidates`` uniform draws and the one nearest ``t``
    (AttentiveNAS: a FLOPs target first, then archs that meet it)."""
    low, high = cost(space.smallest()), cost(space.largest())
    target = rng.uniform(low, high)
    return Candidates(_nearest(space, cost, rng, target, candidates) for _ in range(k))


def _nearest(space, cost, rng, target: float, candidates: int) -> Arch:
    pool = [space.sample(rng) for _ in range(candidates)]
    return min(pool, key=lambda a: abs(cost(a) - target))
