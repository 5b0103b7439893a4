"""Predictor-guided NSGA-II search (LINAS style) under FLOPs / params budgets.

Round 0 evaluates for real the baselines (smallest, largest and median arch) and
``initial`` random archs that meet the cost budgets. Each later round fits one predictor
per measured metric (accuracy) on every real result so far, runs NSGA-II for
``generations`` on the predictions (FLOPs and params are exact, never predicted), then
evaluates for real the ``per_round - uncertain`` most promising and the ``uncertain`` most
uncertain candidates. It stops when ``evaluations`` real evaluations (baselines included)
are spent. Real results are cached by arch and never recomputed; the returned front holds
real results only. Randomness of round ``r`` comes from ``np.random.default_rng([seed, r])``,
so a resumed search equals an uninterrupted one. For comparison, ``strategy="nsga2"`` runs
plain NSGA-II with every individual evaluated for real, and ``strategy="random"`` samples.

Bring your own space and evaluator (any :class:`SearchSpace`, any ``arch -> dict``)::

    from supernet import Dimension, SearchSpace
    from supernet.search_loop import SearchConfig, run_search

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
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from pymoo.optimize import minimize
from tqdm import tqdm

from predictors import MIN_ARCHS, PREDICTORS, kendall_tau, make_predictor, mape
from predictors.base import space_signature

from .arch import Arch, SearchSpace
from .errors import SupernetError
from .runs import RunLog, atomic_write_json, prepare_run_dir, read_json
from .search_outputs import (BudgetSpent, EvaluationStore, annotate, read_evaluations, records, summarise,
                             write_evaluations, write_pareto)
from .search_problem import (Decoder, Scorer, SearchPlan, SearchProblem, check_reachable, fronts,
                             get_metric, initial_population, make_nsga2, make_plan, parse_quantity, plan_reference,
                             sample_feasible, select_candidates)

STRATEGIES = ("predictor", "nsga2", "random")
CSV, STATE = "evaluations.csv", "state.json"


@dataclass
class SearchConfig:
    """Everything that decides a search (saved, resolved, in the run's ``config.json``).

    ``budgets`` maps a minimised metric to its maximum (numbers or ``"20M"``-style text).
    ``evaluations`` counts every real evaluation, baselines included. ``initial`` random
    archs join the baselines in round 0 (default ``evaluations // 4`` within [5, 50]).
    """

    objectives: tuple[str, ...] = ("accuracy", "flops")
    budgets: dict[str, float] = field(default_factory=dict)
    evaluations: int = 200
    initial: int | None = None
    per_round: int = 10
    uncertain: int = 3
    generations: int = 60
    population: int = 50
    predictor: str = "ensemble"
    strategy: str = "predictor"
    seed: int = 0
    target: str | None = None

    def resolved(self) -> "SearchConfig":
        objectives = self.objectives.split(",") if isinstance(self.objectives, str) else self.objectives
        budgets = {n: parse_quantity(v, f"budget on {n}") for n, v in self.budgets.items()}
        initial = self.initial if self.initial is not None else min(50, max(5, self.evaluations // 4))
        return replace(self, objectives=tuple(o.strip() for o in objectives), budgets=budgets, initial=initial)

    def check(self) -> None:
        for name in list(self.objectives) + list(self.budgets) + (["latency"] if self.target is not None else []):
            get_metric(name)  # unknown or not yet available (latency) -> one clear error
        if self.strategy not in STRATEGIES:
            raise SupernetError(f"strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if self.predictor not in PREDICTORS:
            raise SupernetError(f"unknown predictor {self.predictor!r}; choose one of {sorted(PREDICTORS)}")
        for name, low in (("evaluations", MIN_ARCHS), ("per_round", 1), ("generations", 1), ("population", 4),
                          ("initial", 0), ("uncertain", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SupernetError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        if self.uncertain > self.per_round:
            raise SupernetError(f"--uncertain ({self.uncertain}) cannot exceed --per-round ({self.per_round})")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "SearchConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "objectives" else v for k, v in data.items() if k in names})


@dataclass
class SearchResult:
    """What a search found: every real evaluation and the feasible front (flat dicts, ``arch`` as a dict)."""

    run_dir: Path | None
    evaluations: list[dict]
    front: list[dict]
    hypervolume: float
    reference: dict | None
    picks: dict


# -- one search ------------------------------------------------------------------------
class _Run:
    """The store of real evaluations plus everything written about them (CSV, log, state, bar)."""

    def __init__(self, plan: SearchPlan, cfg: SearchConfig, evaluator, run_dir: Path | None, progress: bool,
                 tensorboard: bool):
        self.plan, self.cfg, self.run_dir = plan, cfg, run_dir
        rows = read_evaluations(run_dir / CSV, plan.space) if run_dir and (run_dir / CSV).exists() else []
        state = read_json(run_dir / STATE, "search state") if run_dir and (run_dir / STATE).exists() else {}
        self.next_round = int(state.get("next_round", 0))
        self.bar = tqdm(total=cfg.evaluations, initial=len(rows), desc="search", unit="eval",
                        disable=not progress or None)
        self.store = EvaluationStore(plan, evaluator, cfg.evaluations, rows, self._on_new)
        self.log = RunLog(run_dir, tensorboard) if run_dir else None
        self._reference = None

    def _on_new(self, ev) -> None:
        self.bar.update(1)
        if self.run_dir:
            write_evaluations(self.run_dir / CSV, self.plan, self.store.rows)

    def baselines(self) -> list[tuple[Arch, str]]:
        """(arch, names) of the smallest, largest and median archs; equal archs share one entry."""
        names: dict[Arch, list[str]] = {}
        for name in ("smallest", "largest", "median"):
            names.setdefault(getattr(self.plan.space, name)(), []).append(name)
        return [(arch, "+".join(n)) for arch, n in names.items()]

    @property
    def reference(self):
        if self._reference is None:
            base = [e.metrics for e in self.store.rows if e.baseline]
            self._reference = plan_reference(self.plan, base) if base else None
        return self._reference

    def hypervolume(self) -> float:
        _, pareto = annotate(self.plan, self.store.rows)
        front = [e.metrics for e, p in zip(self.store.rows, pareto) if p]
        return self.reference.hypervolume(self.plan.objective_matrix(front)) if self.reference and front else 0.0

    def end_round(self, r: int, new: list, predicted: Mapping[Arch, Mapping[str, float]] | None = None) -> None:
        """Log round ``r`` (hypervolume, predictor tau / MAPE on the new real points); skipped for replayed rounds."""
        if r < self.next_round:
            return
        _, pareto = annotate(self.plan, self.store.rows)
        record = {"round": r, "evaluations": len(self.store), "new": len(new), "front_size": int(pareto.sum()),
                  "hypervolume": self.hypervolume(), **_predictor_scores(self.plan, new, predicted or {})}
        if self.log:
            scalars = {f"search/{k}": v for k, v in record.items() if k != "round" and v is not None}
            self.log.log(record, r, scalars)
            write_pareto(self.run_dir, self.plan, self.store.rows, self.reference, record["hypervolume"], plot=False)
            atomic_write_json(self.run_dir / STATE, {"next_round": r + 1})
        self.next_round = r + 1

    def finish(self) -> SearchResult:
        """Write the final CSV, ``pareto.json`` and ``pareto.png``; return the result."""
        hv = self.hypervolume()
        if self.run_dir:
            write_evaluations(self.run_dir / CSV, self.plan, self.store.rows)
            summary = write_pareto(self.run_dir, self.plan, self.store.rows, self.reference, hv)
        else:
            summary = summarise(self.plan, self.store.rows, self.reference, hv)
        recs = records(self.plan, self.store.rows)
        return SearchResult(self.run_dir, recs, summary["front"], hv, summary["reference"], summary["picks"])

    def close(self) -> None:
        self.bar.close()
        if self.log:
            self.log.close()


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _predictor_scores(plan: SearchPlan, new: list, predicted: Mapping[Arch, Mapping[str, float]]) -> dict:
    """Kendall tau and MAPE (%) of the round's predictions on its new real points (None where undefined)."""
    out = {}
    for name in plan.measured:
        pairs = [(e.metrics[name], predicted[e.arch][name]) for e in new if e.arch in predicted]
        true, pred = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        ok = true != 0
        out[f"tau/{name}"] = _finite(kendall_tau(true, pred)) if len(pairs) >= 2 else None
        out[f"mape/{name}"] = _finite(mape(true[ok], pred[ok])) if ok.any() else None
    return out


# -- strategies ------------------------------------------------------------------------
def _rounds(run: _Run) -> None:
    """Predictor-guided (or random) rounds until the budget of real evaluations is spent."""
    cfg, store, r = run.cfg, run.store, run.next_round
    while len(store) < cfg.evaluations:
        rng = np.random.default_rng([cfg.seed, r])
        prior = store.before(r)
        room = cfg.evaluations - len(prior)
        predicted = {}
        if r == 0:
            base = run.baselines()
            extra = sample_feasible(run.plan, rng, cfg.initial, {a for a, _ in base})
            todo = base + [(a, "") for a in extra]
        elif cfg.strategy == "random" or len(prior) < MIN_ARCHS:
            todo = [(a, "") for a in sample_feasible(run.plan, rng, min(room, cfg.per_round), {e.arch for e in prior})]
        else:
            picked, predicted = _guided(run, prior, rng, min(room, cfg.per_round))
            todo = [(a, "") for a in picked]
        new = [store.evaluate(a, r, label) for a, label in todo[:room]]
        if not new:
            break  # nothing left to propose: the space (or its feasible part) is exhausted
        run.end_round(r, new, predicted)
        r += 1


def _guided(run: _Run, prior: list, rng: np.random.Generator, n: int) -> tuple[list[Arch], dict]:
    """Fit the predictors on ``prior``, run NSGA-II on them, choose ``n`` archs to evaluate for real."""
    plan, cfg = run.plan, run.cfg
    known = {e.arch: e.metrics for e in prior}
    predictors, scales = {}, {}
    for name in plan.measured:
        y = np.array([e.metrics[name] for e in prior], dtype=float)
        predictors[name] = make_predictor(cfg.predictor, plan.space, seed=cfg.seed).fit([e.arch for e in prior], y)
        scales[name] = float(y.std()) or 1.0
    scorer = Scorer(plan, known, _predictions(predictors, scales))
    decoder = Decoder(plan.space)
    problem = SearchProblem(plan, scorer, decoder)
    feasible = [e for e in prior if plan.feasible(e.metrics)]
    F = plan.objective_matrix([e.metrics for e in feasible])
    elites = [feasible[i].arch for front in fronts(F) for i in front]
    algorithm = make_nsga2(decoder, cfg.population, initial_population(problem, elites, cfg.population, rng))
    minimize(problem, algorithm, ("n_gen", cfg.generations), seed=int(rng.integers(2**31)), copy_algorithm=False)
    n_uncertain = min(cfg.uncertain, n) if predictors else 0
    picked = select_candidates(plan, scorer, known, n - n_uncertain, n_uncertain, run.reference)
    if len(picked) < n:
        picked += sample_feasible(plan, rng, n - len(picked), set(known) | set(picked))
    return picked, {a: scorer.memo[a][0] for a in picked if a in scorer.memo}


def _predictions(predictors: dict, scales: dict) -> Callable:
    """``measure(archs)`` for :class:`Scorer`: predicted means; uncertainty = sum of std / target std."""
    def measure(archs):
        out = {name: p.predict(archs) for name, p in predictors.items()}
        return [({n: float(out[n][0][i]) for n in out}, sum(float(out[n][1][i]) / scales[n] for n in out))
                for i in range(len(archs))]
    return measure


def _nsga2(run: _Run, stale_limit: int = 20) -> None:
    """Plain NSGA-II: every individual evaluated for real (cached); one round per generation.

    A resumed run replays the generations from the cache (no arch is evaluated twice).
    """
    cfg, plan, store = run.cfg, run.plan, run.store
    rng = np.random.default_rng([cfg.seed, 0])
    base = run.baselines()
    for arch, label in base:
        store.evaluate(arch, 0, label)
    gen, stale = [0], 0
    real = lambda arch: store.evaluate(arch, gen[0]).metrics  # noqa: E731
    scorer = Scorer(plan, {}, lambda archs: [({n: m[n] for n in plan.measured}, 0.0) for m in map(real, archs)])
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
def run_search(space: SearchSpace, evaluator: Callable[[Arch], Mapping[str, float]],
               config: SearchConfig | None = None, *, costs: Mapping[str, Callable[[Arch], float]] | None = None,
               out: str | Path | None = None, resume: bool = False, overwrite: bool = False, progress: bool = False,
               tensorboard: bool = True, source: dict | None = None) -> SearchResult:
    """Search ``space``; ``evaluator(arch)`` returns real metrics (at least every objective without a cost).

    ``costs`` maps metric names to exact functions of the arch (e.g. ``{"flops": f, "params": g}``).
    ``out`` is the run folder (``None``: nothing is written, nothing can be resumed). ``resume``
    continues ``out`` with its saved config; a budget nothing can meet raises at once, before
    anything is evaluated or written. ``source`` is recorded in ``config.json``.
    """
    if resume:
        config = _saved_config(out, config, space)
    cfg = (config or SearchConfig()).resolved()
    cfg.check()
    plan = make_plan(space, cfg.objectives, cfg.budgets, costs)
    check_reachable(plan, np.random.default_rng([cfg.seed, 7919]))
    run_dir = None
    if out is not None:
        run_dir = prepare_run_dir(out, "search", resume=resume, overwrite=overwrite)
        if not resume:
            atomic_write_json(run_dir / "config.json", {"search": cfg.to_dict(), "space": space_signature(space),
                                                        "costs": sorted(plan.costs), "source": source or {}})
    run = _Run(plan, cfg, evaluator, run_dir, progress, tensorboard)
    try:
        (_nsga2 if cfg.strategy == "nsga2" else _rounds)(run)
        return run.finish()
    finally:
        run.close()


def _saved_config(out, config: SearchConfig | None, space: SearchSpace) -> SearchConfig:
    if out is None:
        raise SupernetError("resume needs the run folder of the search to continue (--out RUN)")
    data = read_json(Path(out) / "config.json", "search config")
    if "search" not in data:
        raise SupernetError(f"{str(Path(out) / 'config.json')!r} is not a search config; is {str(out)!r} a search run?")
    if data.get("space") != space_signature(space):
        raise SupernetError(f"the search in {str(out)!r} ran on another search space; resume it with that space")
    saved = SearchConfig.from_dict(data["search"])
    if config is not None and config.resolved().to_dict() != saved.to_dict():
        diff = sorted(k for k, v in config.resolved().to_dict().items() if saved.to_dict()[k] != v)
        raise SupernetError(f"resume continues the saved search config, which differs in {diff}; drop those options")
    return saved
