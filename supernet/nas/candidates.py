"""Which archs NSGA-II proposed are evaluated for real: the promising (hypervolume gain), then the uncertain."""
from __future__ import annotations

import heapq
import math

import numpy as np

from ..core.arch import Arch
from .pareto import Reference, fronts
from .plan import SearchPlan
from .problem import Scorer


GREEDY = 10  # candidates chosen one by one by hypervolume gain in a round, at most (each costs a pass of HVs)


# -- choosing what to evaluate for real ------------------------------------------------
def spread(indices: list[int], F: np.ndarray, k: int) -> list[int]:
    """``k`` of ``indices`` evenly spaced along the first objective (all of them if there are <= k)."""
    if len(indices) <= k:
        return list(indices)
    order = sorted(indices, key=lambda i: (F[i, 0], i))
    return [order[int(j)] for j in np.round(np.linspace(0, len(order) - 1, k))]


def _greedy_hypervolume(F: np.ndarray, pool: list[int], base: list[int], k: int, reference: Reference) -> list[int]:
    """Up to ``k`` of ``pool``, each adding the most hypervolume to ``base`` plus those already taken (the first
    in ``pool`` among equal gains; none once the best gain is <= 1e-12).

    Lazy greedy: hypervolume is submodular, so a candidate's gain measured against fewer taken points bounds
    its gain now; a candidate is taken when its fresh gain beats every other bound, and only the candidates
    popped from the heap of bounds are measured again (the same picks as measuring all in every step)."""
    taken: list[int] = []
    current = reference.hypervolume(F[base])
    heap = [(-math.inf, pos, i) for pos, i in enumerate(pool)]  # (-bound on the gain, position in pool, index)
    while len(taken) < k and heap:
        _, pos, i = heapq.heappop(heap)
        value = reference.hypervolume(F[base + taken + [i]])
        gain = value - current
        if heap and (-heap[0][0], -heap[0][1]) > (gain, -pos):  # another may gain more (or as much, earlier)
            heapq.heappush(heap, (-gain, pos, i))
            continue
        if value <= current + 1e-12:
            break
        taken.append(i)
        current = value
    return taken


def select_candidates(plan: SearchPlan, scorer: Scorer, evaluated, n_promising: int, n_uncertain: int,
                      reference: Reference | None = None) -> list[Arch]:
    """Unevaluated feasible archs among those NSGA-II scored: the promising, then the uncertain.

    Candidates are ranked into non-dominated fronts together with the feasible real points
    (which take no slot). Promising: with a ``reference``, greedily the (at most ``GREEDY``)
    candidates whose predicted values add the most hypervolume to the real front (among the
    best-ranked ``max(100, 20 * min(n_promising, GREEDY))``); the rest of the slots go to the best
    fronts, spread along the first objective. Uncertain: the largest predicted uncertainty among the next
    ``4 * n_uncertain`` best-ranked candidates, so uncertainty is explored where it matters.
    """
    cands = [a for a, (v, _) in scorer.memo.items()
             if a not in evaluated and all(math.isfinite(v[n]) for n in plan.used) and plan.feasible(v)]
    real = [v for v in scorer.known.values() if plan.feasible(v)]
    F = plan.objective_matrix([scorer.memo[a][0] for a in cands] + real)
    ranks = fronts(F)
    ranked = [int(i) for front in ranks for i in front if i < len(cands)]
    picked = []
    if reference is not None and n_promising:
        base = [int(i) for i in ranks[0] if i >= len(cands)] if ranks else []
        k = min(n_promising, GREEDY)
        picked = _greedy_hypervolume(F, ranked[:max(100, 20 * k)], base, k, reference)
    for front in ranks:
        if len(picked) >= n_promising:
            break
        chosen = set(picked)
        new = [int(i) for i in front if i < len(cands) and i not in chosen]
        picked += spread(new, F, n_promising - len(picked))
    taken = set(picked)
    near = [i for i in ranked if i not in taken][:4 * n_uncertain]
    uncertain = sorted(near, key=lambda i: -scorer.memo[cands[i]][1])[:n_uncertain]
    return [cands[i] for i in picked + uncertain]


def sample_feasible(plan: SearchPlan, rng: np.random.Generator, n: int, exclude, tries: int = 50) -> list[Arch]:
    """Up to ``n`` distinct random archs outside ``exclude`` meeting the cost budgets (``tries * n`` draws at most)."""
    out: dict[Arch, None] = {}
    for _ in range(tries * n):
        if len(out) >= n:
            break
        arch = plan.space.canonical(plan.space.sample(rng))
        if arch not in exclude and arch not in out and plan.cost_feasible(arch):
            out[arch] = None
    return list(out)


def neighbours(plan: SearchPlan, decoder, archs, exclude, k: int, rng: np.random.Generator) -> list[Arch]:
    """Up to ``k`` distinct canonical archs one position away from ``archs`` (every other choice at every
    position; a change of an inactive position is the same arch, not a neighbour), outside ``exclude`` and
    meeting the cost budgets: all of the first arch's (in a random order),
    then the next arch's, and so on. A cheap search evaluates them for real beside NSGA-II's proposals, a local
    search around its real front that no predictor's error can mislead."""
    upper = plan.space.bounds()[1]
    position = np.repeat(np.arange(len(upper)), upper + 1)  # every (position, choice) pair
    choice = np.concatenate([np.arange(h + 1) for h in upper])
    out: dict[Arch, None] = {}
    for arch in archs:
        x = plan.space.encode(arch)
        moves = np.flatnonzero(choice != x[position])
        rows = np.repeat(x[None, :], len(moves), axis=0)
        rows[np.arange(len(moves)), position[moves]] = choice[moves]
        for cand in decoder.many(rows[rng.permutation(len(rows))]):
            if cand != arch and cand not in exclude and cand not in out and plan.cost_feasible(cand):
                out[cand] = None
                if len(out) >= k:
                    return list(out)
    return list(out)


def best_first(plan: SearchPlan, rows: list, depth: int | None = None) -> list[Arch]:
    """The archs of the evaluations ``rows`` feasible for ``plan``, front by front (the first ``depth`` fronts, or
    all), each front by its first objective: where :func:`neighbours` starts."""
    feasible = [e for e in rows if plan.feasible(e.metrics)]
    F = plan.objective_matrix([e.metrics for e in feasible])
    return [feasible[i].arch for front in fronts(F)[:depth] for i in sorted(front, key=lambda i: (F[i, 0], i))]


def hill_climb(plan: SearchPlan, decoder, prior: list, new: list, local: int, limit: int, rng: np.random.Generator,
               evaluate) -> list:
    """The last ``local`` archs of a cheap guided round (:mod:`supernet.nas.pace`): :func:`neighbours` of the
    real front in ``pace.STEPS`` batches, each around the front that ``prior`` (the evaluations of the rounds
    before) and the round's evaluations so far (``new``) make, so the front climbs within the round;
    ``evaluate(archs)`` returns their evaluations; at most ``limit`` evaluations in all. Returns ``new`` plus
    the batches' evaluations. Each step looks only at what it was given, never at the store, so a resumed
    round (whose later rows are already stored) proposes what the uninterrupted one did."""
    from . import pace
    seen = {e.arch for e in prior} | {e.arch for e in new}
    for step in range(pace.STEPS):
        k = min(local * (step + 1) // pace.STEPS - local * step // pace.STEPS, limit - len(seen))
        start = best_first(plan, [e for e in prior + new if e.ok], depth=2)
        if k <= 0 or not start:
            continue
        got = evaluate(neighbours(plan, decoder, start, seen, k, rng))
        new = new + [e for e in got if e.arch not in seen]
        seen.update(e.arch for e in got)
    return new
