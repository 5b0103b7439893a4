"""Predictor-guided NSGA-II search (LINAS style) under FLOPs / params / latency budgets.

Round 0 evaluates for real the baselines (smallest, largest and median arch) and
``initial`` random archs that meet the cost budgets. Each later round fits one predictor
per measured metric (accuracy; default ``auto``, which picks its model by cross-validated
Kendall tau) on every real result so far, runs NSGA-II for ``generations`` on the
predictions (FLOPs and params are exact, never predicted), then evaluates for real the
``per_round - uncertain`` most promising and the ``uncertain`` most uncertain candidates. It
stops when ``evaluations`` real evaluations (baselines included) are spent. Real results are
cached by arch and never recomputed; the returned front holds real results only. Randomness of
round ``r`` comes from ``np.random.default_rng([seed, r])``, so a resumed search equals an
uninterrupted one. For comparison, ``strategy="nsga2"`` runs plain NSGA-II with every individual
evaluated for real, and ``strategy="random"`` samples.

Bring your own space and evaluator (any :class:`SearchSpace`, any ``arch -> dict``)::

    from supernet import Dimension, SearchConfig, SearchSpace, run_search

    space = SearchSpace([Dimension("width", (16, 24, 32, 48, 64)), Dimension("depth", (1, 2, 3, 4, 5, 6))])
    costs = {"flops": lambda a: a["width"] ** 2 * a["depth"]}   # exact, never predicted

    def evaluate(arch):            # train, look up a table, measure...: called once per arch
        return {"accuracy": 1 - 1 / (arch["width"] * arch["depth"])}

    config = SearchConfig(objectives=("accuracy", "flops"), budgets={"flops": "10K"}, evaluations=12)
    result = run_search(space, evaluate, config, costs=costs, out="runs/my-search")
    for row in result.front:
        print(row["accuracy"], row["flops"], row["arch"])

A metric without a cost function (here ``accuracy``) must be returned by the evaluator
and is predicted during NSGA-II. ``run_search(..., resume=True)`` continues a run folder.
Archs are evaluated for real only through ``evaluate_many`` (:mod:`supernet.evaluation.evaluators`);
an exception, a timeout, a NaN or a missing metric is a recorded failure (``status`` in
``evaluations.csv``), never proposed again; ``max_failures`` bounds them. The search takes its
predictors from the factory it is given (the front door's :func:`supernet.run_search` gives
:func:`predictors.make_predictor`); it imports no predictor itself.
"""
from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from pymoo.optimize import minimize

from ..core.arch import Arch
from ..core.contract import hook
from ..core.errors import SupernetError
from ..core.space import SearchSpace, space_signature
from ..io.files import atomic_write_json, read_json
from ..io.runs import prepare_run_dir
from .candidates import best_first, hill_climb, neighbours, sample_feasible, select_candidates
from .search_config import MIN_FIT, SearchConfig, SearchResult
from .pareto import fronts, reference_values
from .plan import make_plan
from .problem import Decoder, Scorer, SearchProblem, initial_population, make_nsga2
from . import pace
from .pace import round_size
from .reach import check_reachable
from .run import SearchRun
from .store import BudgetSpent, TooManyFailures

FIT_CAP = 1000  # real results a round's predictors are fitted on, at most (see fit_set)
MAX_POPULATION = 400  # NSGA-II population of a round, at most (a round of n archs uses max(population, n))


# -- strategies ------------------------------------------------------------------------
def _rounds(run: SearchRun) -> None:
    """Predictor-guided (or random) rounds until the budget of real evaluations is spent (sizes: :mod:`.pace`)."""
    cfg, store, r = run.cfg, run.store, run.next_round
    while len(store) < cfg.evaluations:
        rng = np.random.default_rng([cfg.seed, r])
        prior = store.before(r)
        seen = {e.arch for e in prior}  # failures included: never proposed again
        good = [e for e in prior if e.ok]
        room = cfg.evaluations - len(prior)
        predicted, climb = {}, 0
        batch = round_size(cfg, len(prior), run.cheap)
        if r == 0:
            base = run.baselines()
            extra = sample_feasible(run.plan, rng, cfg.initial, {a for a, _ in base})
            todo = base + [(a, "") for a in extra]
        elif cfg.strategy == "random" or len(good) < MIN_FIT:
            todo = [(a, "") for a in sample_feasible(run.plan, rng, min(room, batch), seen)]
        else:
            picked, predicted = _guided(run, good, seen, rng, min(room, batch), r)
            todo = [(a, "") for a in picked]
            climb = pace.local_share(min(room, batch), run.cheap)  # left to the hill climb
        todo = todo[:room]
        new = run.evaluate_round(todo, r)
        if climb:  # the round's last archs: a hill climb from the real front (nas.pace)
            new = hill_climb(run.plan, shared_decoder(run.plan.space), prior, new, climb, cfg.evaluations, rng,
                             lambda archs: run.evaluate_round([(a, "") for a in archs], r))
        if not new:
            break  # nothing left to propose: the space (or its feasible part) is exhausted
        run.end_round(r, new, predicted)
        r += 1


def _guided(run: SearchRun, prior: list, seen: set, rng: np.random.Generator, n: int, r: int) -> tuple[list[Arch], dict]:
    """Fit the predictors on the ok results ``prior``, run NSGA-II on them, choose ``n`` new archs (not in ``seen``)."""
    measure = fit_predictors(run, run.plan, prior, rng, r, quick=True)
    return propose(run.plan, run.cfg, measure, prior, seen, rng, n, run.reference, run.cheap, climb=True)


def fit_predictors(run: SearchRun, plan, prior: list, rng: np.random.Generator, r: int | None = None,
                   quick: bool = False) -> Callable | None:
    """One predictor per measured metric of ``plan``, fitted on :func:`fit_set` of ``prior``: ``measure(archs)``
    for :class:`Scorer` (None when nothing is measured). In a cheap search (:mod:`.pace`) a predictor with a
    ``refit`` hook keeps the model it chose in the last choice round before ``r`` and is only refitted; with
    ``quick``, the first choice waits for ``pace.CHOOSE_AT`` ok results and the rounds before fit the predictor
    with its ``quick`` hook (no choice)."""
    cfg, predictors, scales = run.cfg, {}, {}
    train = fit_set(plan, prior, rng)
    archs = [e.arch for e in train]
    new = lambda: run.factory(cfg.predictor, plan.space, cfg.seed)  # noqa: E731
    paced = run.cheap and r is not None and hook(new(), "refit") is not None
    chooser = _last_choice(run, r, pace.CHOOSE_AT if quick else 0) if paced else None
    for name in plan.measured:
        y = np.array([e.metrics[name] for e in train], dtype=float)
        if not paced or chooser == r or (chooser is None and not quick):
            predictors[name] = new().fit(archs, y)
            if chooser == r:
                run.choosers[name] = (r, predictors[name])
        elif chooser is None:  # before the first choice round: no choice yet
            fit_quick = hook(new(), "quick")
            predictors[name] = fit_quick(archs, y) if fit_quick is not None else new().fit(archs, y)
        else:
            held = run.choosers.get(name)
            if held is None or held[0] != chooser:  # a resumed search: make that round's choice again
                held = run.choosers[name] = (chooser, _choice_fit(run, plan, chooser, name))
            predictors[name] = hook(held[1], "refit")(archs, y)
        scales[name] = float(y.std()) or 1.0
        if hook(predictors[name], "chosen"):
            run.chosen[name] = hook(predictors[name], "chosen")
    return _predictions(predictors, scales) if predictors else None


def _last_choice(run: SearchRun, r: int, first: int = 0) -> int | None:
    """The last round ``<= r`` whose fit chooses the model (:func:`.pace.choice_rounds` over the guided rounds,
    the first with ``first`` ok results); None before the first."""
    ok = np.bincount([e.round for e in run.store.rows if e.ok and e.round < r], minlength=r)
    before = np.concatenate([[0], np.cumsum(ok)])[:r + 1]  # ok results before each round 0..r
    guided = [q for q in range(1, r + 1) if before[q] >= MIN_FIT]
    choices = pace.choice_rounds([int(before[q]) for q in guided], first)
    return guided[choices[-1]] if choices else None


def _choice_fit(run: SearchRun, plan, r: int, name: str):
    """The predictor of metric ``name`` fitted (with its choice) as round ``r`` fitted it."""
    prior = [e for e in run.store.before(r) if e.ok]
    train = fit_set(plan, prior, np.random.default_rng([run.cfg.seed, r]))
    y = np.array([e.metrics[name] for e in train], dtype=float)
    return run.factory(run.cfg.predictor, plan.space, run.cfg.seed).fit([e.arch for e in train], y)


def propose(plan, cfg: SearchConfig, measure: Callable | None, prior: list, seen: set, rng: np.random.Generator,
            n: int, reference, cheap: bool | None = None, climb: bool = False) -> tuple[list[Arch], dict]:
    """NSGA-II on ``plan`` with real values of ``prior`` and ``measure``'s predictions elsewhere; ``n`` new archs
    (not in ``seen``): the promising, the uncertain, in a ``cheap`` search neighbours of the real front (best
    first objective first, :func:`~supernet.nas.candidates.neighbours`; :mod:`.pace`), then random feasible
    ones; and their predictions. With ``climb`` (and ``cheap``) the neighbours' share is left out (the caller
    climbs from the front, :func:`~supernet.nas.candidates.hill_climb`) and NSGA-II's generations follow the
    round's size (:func:`.pace.generations`)."""
    scorer = explore(plan, cfg, measure or (lambda archs: [({}, 0.0) for _ in archs]), prior, rng, n, cheap,
                     n if climb else None)
    n_uncertain = min(cfg.uncertain, n) if measure else 0
    if climb and cheap:
        n = n - pace.local_share(n, cheap)  # the hill climb's share
        n_uncertain, local = min(n_uncertain, n), 0
    else:
        local = min(pace.local_share(n, cheap), n - n_uncertain)
    picked = select_candidates(plan, scorer, seen, n - n_uncertain - local, n_uncertain, reference)
    if local:
        picked += neighbours(plan, shared_decoder(plan.space), best_first(plan, prior), seen | set(picked), local,
                             rng)
    if len(picked) < n:
        picked += sample_feasible(plan, rng, n - len(picked), seen | set(picked))
    return picked, {a: scorer.memo[a][0] for a in picked if a in scorer.memo}


def explore(plan, cfg: SearchConfig, measure: Callable, prior: list, rng: np.random.Generator, n: int,
            cheap: bool | None, climb: int | None = None) -> Scorer:
    """NSGA-II on ``plan`` for a round of ``n`` archs: real values of ``prior`` (its real front seeds the
    population), ``measure``'s predictions elsewhere, generations from :func:`.pace.generations` (``climb``: the
    round's size when it climbs); the :class:`Scorer` holding every arch it scored."""
    scorer = Scorer(plan, {e.arch: e.metrics for e in prior}, measure)
    decoder = shared_decoder(plan.space)
    problem = SearchProblem(plan, scorer, decoder)
    feasible = [e for e in prior if plan.feasible(e.metrics)]
    F = plan.objective_matrix([e.metrics for e in feasible])
    elites = [feasible[i].arch for front in fronts(F) for i in front]
    size = min(max(cfg.population, n), MAX_POPULATION)  # a large round needs as many distinct proposals
    algorithm = make_nsga2(decoder, size, initial_population(problem, elites, size, rng))
    gens = pace.generations(cfg, cheap, climb, size)
    minimize(problem, algorithm, ("n_gen", gens), seed=int(rng.integers(2**31)), copy_algorithm=False)
    return scorer


def shared_decoder(space) -> Decoder:
    """One :class:`Decoder` per space for the whole search (its memo of archs carries across rounds)."""
    decoder = _DECODERS.get(space)
    if decoder is None or len(decoder._memo) > 500_000:
        decoder = _DECODERS[space] = Decoder(space)
    return decoder


_DECODERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def fit_set(plan, prior: list, rng: np.random.Generator, cap: int = FIT_CAP) -> list:
    """The real results a round's predictors learn from: all of them up to ``cap``; beyond, the ``cap / 2``
    best-ranked (non-dominated fronts of the objectives, the feasible first; a front larger than the room
    left gives points evenly spread along its first objective, both ends included) and ``cap / 2`` others
    drawn at random, so a refit costs the same at 1,000 and at 50,000 evaluations and stays sharp near the front."""
    if len(prior) <= cap:
        return prior
    from .candidates import spread
    feasible = np.array([plan.feasible(e.metrics) for e in prior])
    best: list[int] = []
    for group in (np.flatnonzero(feasible), np.flatnonzero(~feasible)):
        F = plan.objective_matrix([prior[i].metrics for i in group])
        for front in fronts(F):
            if len(best) >= cap // 2:
                break
            best += [int(group[i]) for i in spread([int(i) for i in front], F, cap // 2 - len(best))]
    rest = np.setdiff1d(np.arange(len(prior)), best)
    drawn = rng.choice(rest, size=cap - len(best), replace=False)
    return [prior[i] for i in sorted(best + [int(i) for i in drawn])]


def _predictions(predictors: dict, scales: dict) -> Callable:
    """``measure(archs)`` for :class:`Scorer`: predicted means; uncertainty = sum of std / target std."""
    def measure(archs):
        out = {name: p.predict(archs) for name, p in predictors.items()}
        return [({n: float(out[n][0][i]) for n in out}, sum(float(out[n][1][i]) / scales[n] for n in out))
                for i in range(len(archs))]
    return measure


def _nsga2(run: SearchRun, stale_limit: int = 20) -> None:
    """Plain NSGA-II: every individual evaluated for real (cached), one ``evaluate_many`` per generation.

    A failed arch scores worst in every objective. A resumed run replays the generations
    from the cache (no arch is evaluated twice).
    """
    cfg, plan, store = run.cfg, run.plan, run.store
    rng = np.random.default_rng([cfg.seed, 0])
    base = run.baselines()
    store.evaluate_many([a for a, _ in base], 0, [label for _, label in base])
    gen, stale = [0], 0

    def real(archs):
        evaluations = store.evaluate_many(archs, gen[0])
        return [({n: e.metrics.get(n, math.nan) if e.ok else math.nan for n in plan.measured}, 0.0)
                for e in evaluations]
    scorer = Scorer(plan, {}, real)
    decoder = Decoder(plan.space)
    problem = SearchProblem(plan, scorer, decoder)
    algorithm = make_nsga2(decoder, cfg.population, initial_population(problem, [a for a, _ in base],
                                                                       cfg.population, rng))
    algorithm.setup(problem, termination=("n_gen", 10**9), seed=int(rng.integers(2**31)))
    before = 0
    while len(store) < cfg.evaluations and stale < stale_limit:
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:
            break
        try:
            algorithm.evaluator.eval(problem, pop)
        except BudgetSpent:
            run.end_round(gen[0], store.rows[before:])
            break
        algorithm.tell(infills=pop)
        stale = 0 if len(store) > before else stale + 1
        run.end_round(gen[0], store.rows[before:])
        gen[0], before = gen[0] + 1, len(store)


# -- entry points ----------------------------------------------------------------------
def run_search(space: SearchSpace, evaluator, config: SearchConfig | None = None, *,
               costs: Mapping[str, Callable[[Arch], float]] | None = None, out: str | Path | None = None,
               resume: bool = False, overwrite: bool = False, progress: bool = False, tensorboard: bool = True,
               source: dict | None = None, predictor_factory: Callable | None = None,
               option_names: Mapping[str, str] | None = None) -> SearchResult:
    """Search ``space``; the evaluator returns real metrics (at least every objective without a cost).

    ``evaluator`` is a callable ``arch -> dict`` or an object with ``evaluate_many(archs) -> [dict |
    Failure]`` (see :mod:`supernet.evaluation.evaluators`); an exception, a timeout, a NaN or a missing metric is
    a recorded failure, never a crash. ``costs`` maps metric names to exact functions of the arch
    (e.g. ``{"flops": f, "params": g}``); a cost that raises, is NaN or negative fails that arch.
    ``out`` is the run folder (``None``: nothing is written, nothing can be resumed). ``resume``
    continues ``out`` with its saved config; a budget nothing can meet raises at once, before
    anything is evaluated or written. ``source`` is recorded in ``config.json``.
    ``predictor_factory(name, space, seed)`` builds predictors (needed by ``strategy="predictor"``;
    :func:`supernet.run_search` gives :func:`predictors.make_predictor`). ``option_names`` maps config fields (``budgets.flops``,
    ``evaluations``...) to the caller's option names for messages (the CLI passes its flags).
    More than ``max_failures`` failures raise :class:`TooManyFailures` whose ``.result`` holds
    everything found so far.
    """
    if resume:
        config = saved_config(out, config, space)
    cfg = (config or SearchConfig()).resolved()
    cfg.check(option_names)
    plan = make_plan(space, cfg.objectives, cfg.budgets, costs)
    if cfg.reference_point is not None:
        reference_values(plan, cfg.reference_point)
    factory = predictor_factory
    if cfg.strategy == "predictor":
        if factory is None:
            raise SupernetError("a predictor-guided search needs predictor_factory(name, space, seed); "
                                "supernet.run_search gives predictors.make_predictor")
        factory(cfg.predictor, space, cfg.seed)  # an unknown predictor fails here, before anything runs
    witness = check_reachable(plan, np.random.default_rng([cfg.seed, 7919]), option_names)
    run_dir = None
    if out is not None:
        run_dir = prepare_run_dir(out, "search", resume=resume, overwrite=overwrite)
        if not resume:
            atomic_write_json(run_dir / "config.json", {"search": cfg.to_dict(), "space": space_signature(space),
                                                        "costs": sorted(plan.costs), "source": source or {}})
    run = SearchRun(plan, cfg, evaluator, run_dir, progress, tensorboard, factory, witness)
    run.split = (source or {}).get("split")
    try:
        (_nsga2 if cfg.strategy == "nsga2" else _rounds)(run)
    except TooManyFailures as exc:
        exc.result = run.finish()
        run.close()
        raise
    except BaseException:  # SIGINT, an error: every finished evaluation is on disk before it propagates
        run.flush()
        run.close()
        raise
    try:
        return run.finish()
    finally:
        run.close()


def saved_config(out, config: SearchConfig | None, space: SearchSpace) -> SearchConfig:
    if out is None:
        raise SupernetError("resume needs the run folder of the search to continue (--out RUN)")
    data = read_json(Path(out) / "config.json", "search config")
    if "search" not in data:
        raise SupernetError(f"{str(Path(out) / 'config.json')!r} is not a search config; is {str(out)!r} a search run?")
    if data.get("space") != space_signature(space):
        raise SupernetError(f"the search in {str(out)!r} ran on another search space; resume it with that space")
    saved = SearchConfig.from_dict(data["search"]).resolved()
    if config is not None and config.resolved().to_dict() != saved.to_dict():
        diff = sorted(k for k, v in config.resolved().to_dict().items() if saved.to_dict()[k] != v)
        raise SupernetError(f"resume continues the saved search config, which differs in {diff}; drop those options")
    return saved
