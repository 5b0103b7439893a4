"""What a multi-target round evaluates: candidates chosen for every target at once.

One accuracy predictor serves every target, and one real evaluation improves every target's
front it lands on, so a round does not choose per target in isolation. It runs NSGA-II once per
target (:func:`supernet.nas.loop.explore`: that target's objectives and budget, the shared predictor), pools the
best-ranked candidates of every target, and chooses greedily the candidate whose predicted
values add the most hypervolume summed over the targets::

    gain(c) = sum_t [ HV_t(F_t + P + {c}) - HV_t(F_t + P) ]     (c counted for t only if feasible for t)

where ``F_t`` is target ``t``'s real front, ``P`` the candidates already chosen and ``HV_t`` the
hypervolume in ``t``'s fixed normalised reference (every target's box has the same size, so the
gains add up). A candidate on several targets' predicted fronts is chosen first, and a target
whose front has more room gets more candidates: no fixed quota per target. At most ``GREEDY``
per target are chosen so (each costs a pass of hypervolumes); the other slots go per target, as
in a single-target round (:func:`~supernet.nas.candidates.select_candidates`): the best fronts
spread along the first objective, the uncertain, the real front's neighbours in a cheap search,
then random feasible archs.
"""
from __future__ import annotations

import heapq
from typing import Callable, Mapping

import numpy as np

from ..core.arch import Arch
from . import pace
from .candidates import GREEDY, best_first, neighbours, sample_feasible, select_candidates
from .pareto import Reference, fronts
from .plan import SearchPlan
from .problem import Scorer

POOL = 100  # best-ranked candidates of each target that enter the joint choice


def _ranked(plan: SearchPlan, scorer: Scorer, seen, k: int) -> list[Arch]:
    """The ``k`` best-ranked unevaluated candidates of ``scorer`` feasible for ``plan`` (fronts, then order)."""
    cands = [a for a, (v, _) in scorer.memo.items()
             if a not in seen and a not in scorer.known and plan.feasible(v)
             and all(np.isfinite(v[m]) for m in plan.used)]
    if not cands:
        return []
    F = plan.objective_matrix([scorer.memo[a][0] for a in cands])
    return [cands[int(i)] for front in fronts(F) for i in front][:k]


def joint_greedy(plans: Mapping[str, SearchPlan], scorers: Mapping[str, Scorer], pool: list[Arch],
                 references: Mapping[str, Reference | None], k: int) -> list[Arch]:
    """Up to ``k`` of ``pool``, each adding the most hypervolume summed over the targets (module doc); lazy
    greedy (a hypervolume gain only shrinks as candidates are added, so a stale gain bounds the true one)."""
    targets = [t for t in plans if references.get(t) is not None]
    if not pool or not targets or k <= 0:
        return []
    rows, ok, base, current = {}, {}, {}, {}
    for t in targets:
        plan, scorer = plans[t], scorers[t]
        values = [v for v, _ in scorer(pool)]
        rows[t] = plan.objective_matrix(values)
        ok[t] = np.array([plan.feasible(v) for v in values])
        real = [v for v in scorer.known.values() if plan.feasible(v)]
        base[t] = plan.objective_matrix(real) if real else np.zeros((0, len(plan.objectives)))
        current[t] = references[t].hypervolume(base[t])

    def gain(i: int) -> float:
        return sum(references[t].hypervolume(np.vstack([base[t], rows[t][i:i + 1]])) - current[t]
                   for t in targets if ok[t][i])

    heap = [(-gain(i), i) for i in range(len(pool))]
    heapq.heapify(heap)
    taken: list[int] = []
    while heap and len(taken) < k:
        _, i = heapq.heappop(heap)
        g = gain(i)
        if g <= 1e-12:
            continue
        if heap and g < -heap[0][0] - 1e-15:
            heapq.heappush(heap, (-g, i))
            continue
        taken.append(i)
        for t in targets:
            if ok[t][i]:
                base[t] = np.vstack([base[t], rows[t][i:i + 1]])
                current[t] = references[t].hypervolume(base[t])
    return [pool[i] for i in taken]


def propose_targets(plans: Mapping[str, SearchPlan], cfg, measure: Callable, prior: list, seen: set,
                    rng: np.random.Generator, sizes: Mapping[str, int], references: Mapping[str, Reference | None],
                    cheap: bool | None) -> tuple[list[Arch], dict]:
    """A round's new archs (``sum(sizes)``, none in ``seen``) and their predictions: NSGA-II per target, the
    joint greedy choice (module doc), then per target (``sizes[t]`` archs each in all) its spread promising,
    uncertain, real-front neighbours (cheap search) and random feasible archs."""
    from .loop import explore, shared_decoder
    scorers = {t: explore(plan, cfg, measure, prior, rng, sizes[t], cheap) for t, plan in plans.items()}
    unc = {t: min(u, n) for (t, n), u in zip(sizes.items(), split(cfg.uncertain, len(sizes)))}
    quota = {t: (unc[t], min(pace.local_share(n, cheap), n - unc[t])) for t, n in sizes.items()}
    promising = {t: sizes[t] - sum(quota[t]) for t in plans}
    pool = list(dict.fromkeys(a for t, plan in plans.items()
                              for a in _ranked(plan, scorers[t], seen, max(POOL, 20 * min(promising[t], GREEDY)))))
    picked = joint_greedy(plans, scorers, pool, references,
                          min(sum(promising.values()), GREEDY * len(plans)))
    left = sum(promising.values()) - len(picked)
    for (t, plan), share in zip(plans.items(), _spread_left(left, promising)):
        n_unc, n_local = quota[t]
        taken = seen | set(picked)
        new = select_candidates(plan, scorers[t], taken, share, n_unc, None)
        if n_local:
            new += neighbours(plan, shared_decoder(plan.space), best_first(plan, prior), taken | set(new), n_local,
                              rng)
        want = share + n_unc + n_local
        if len(new) < want:
            new += sample_feasible(plan, rng, want - len(new), taken | set(new))
        picked += new
    memo = {a: v for s in scorers.values() for a, (v, _) in s.memo.items()}
    return picked, {a: memo[a] for a in picked if a in memo}


def split(n: int, parts: int) -> list[int]:
    """``n`` as ``parts`` near-equal counts, the larger first."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def _spread_left(left: int, promising: Mapping[str, int]) -> list[int]:
    """``left`` promising slots shared by the targets in proportion to their quotas (largest remainders)."""
    total = sum(promising.values())
    if total <= 0 or left <= 0:
        return [0] * len(promising)
    exact = [left * p / total for p in promising.values()]
    out = [int(x) for x in exact]
    for j in sorted(range(len(exact)), key=lambda j: -(exact[j] - out[j]))[:left - sum(out)]:
        out[j] += 1
    return out

