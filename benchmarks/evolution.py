"""OFA's evolutionary search (``ofa/nas/search_algorithm/evolution_finder.py``), on arrays, as the baseline.

Population 100; each generation keeps the best 25 % (parents) and adds ``0.5 * population``
mutants (each ks / e / d position resampled with probability 0.1 from a random parent) and as
many crossovers (each position from either of two random parents), every child resampled until
it meets the latency budget, exactly as OFA does; every arch entering a population is one call
of the accuracy oracle (duplicates included, as in OFA). ``best[k]`` is the best accuracy among
the first ``k + 1`` calls.
"""
from __future__ import annotations

import numpy as np

from .ofa_oracle import DS, DEPTH, STAGES, OfaOracle

N = STAGES * DEPTH


def _random(rng, n):
    return rng.integers(0, 3, (n, N)), rng.integers(0, 3, (n, N)), np.array(DS)[rng.integers(0, 3, (n, STAGES))]


def _feasible(oracle: OfaOracle, budget: float, make, n: int, rng) -> tuple:
    """``n`` children from ``make(k)`` (arrays of ``k`` archs), redrawn until each meets ``budget``."""
    out = [np.zeros((0, N), int), np.zeros((0, N), int), np.zeros((0, STAGES), int)]
    while len(out[2]) < n:
        ks, e, d = make(2 * (n - len(out[2])))
        ok = oracle.latency_arrays(ks, e, d) <= budget
        out = [np.concatenate([o, x[ok]]) for o, x in zip(out, (ks, e, d))]
    return tuple(o[:n] for o in out)


def evolve(oracle: OfaOracle, budget: float, calls: int, seed: int, population: int = 100,
           parent_ratio: float = 0.25, mutate_prob: float = 0.1, mutation_ratio: float = 0.5) -> np.ndarray:
    """Best-so-far accuracy after each of ``calls`` oracle calls (a float array of that length)."""
    rng = np.random.default_rng(seed)
    pop = _feasible(oracle, budget, lambda k: _random(rng, k), population, rng)
    scores = [oracle.accuracy_arrays(*pop)]
    acc = scores[0]
    n_par, n_mut = int(population * parent_ratio), int(population * mutation_ratio)
    while sum(len(s) for s in scores) < calls:
        top = np.argsort(-acc)[:n_par]
        parents = tuple(x[top] for x in pop)

        def mutate(k):
            pick = rng.integers(0, n_par, k)
            new = _random(rng, k)
            return tuple(np.where(rng.random(x[pick].shape) < mutate_prob, r, x[pick]) for x, r in zip(parents, new))

        def cross(k):
            a, b = rng.integers(0, n_par, k), rng.integers(0, n_par, k)
            return tuple(np.where(rng.random(x[a].shape) < 0.5, x[a], x[b]) for x in parents)

        kids = [_feasible(oracle, budget, f, m, rng) for f, m in ((mutate, n_mut), (cross, population - n_par - n_mut))]
        children = tuple(np.concatenate([k[i] for k in kids]) for i in range(3))
        child_acc = oracle.accuracy_arrays(*children)
        scores.append(child_acc)
        pop = tuple(np.concatenate([p, c]) for p, c in zip(parents, children))
        acc = np.concatenate([acc[top], child_acc])
    return np.maximum.accumulate(np.concatenate(scores))[:calls]
