"""Predictor-guided NSGA-II search (LINAS style) under FLOPs / params budgets.

Round 0 evaluates for real the baselines (smallest, largest and median arch) and
``initial`` random archs that meet the cost budgets. Each later round fits one predictor
per measured metric (accuracy; default ``auto``, which picks its model by cross-validated
Kendall tau) on every real result so far, runs NSGA-II for
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
Archs are evaluated for real only through ``evaluate_many`` (:mod:`supernet.evaluators`); an
exception, a timeout, a NaN or a missing metric is a recorded failure (``status`` in
``evaluations.csv``), never proposed again; ``max_failures`` bounds them.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from pymoo.optimize import minimize
from tqdm import tqdm

from .arch import Arch, SearchSpace, space_signature
from .errors import SupernetError
from .evaluators import as_evaluator
from .runs import RunLog, atomic_write_json, prepare_run_dir, read_json
from .search_outputs import (BudgetSpent, EvaluationStore, TooManyFailures, annotate, read_evaluations, records,
                             summarise, write_evaluations, write_pareto)
from .search_problem import (Decoder, Scorer, SearchPlan, SearchProblem, check_reachable, fronts, get_metric,
                             hypervolume, initial_population, make_nsga2, make_plan, option_name, parse_quantity,
                             plan_reference, reference_values, sample_feasible, select_candidates)

__all__ = ["SearchConfig", "SearchResult", "SearchWarning", "TooManyFailures", "run_search", "hypervolume",
           "default_predictor_factory", "parse_quantity"]

STRATEGIES = ("predictor", "nsga2", "random")
CSV, STATE = "evaluations.csv", "state.json"
MIN_FIT = 5  # real results needed before a predictor is fitted (random archs until then)


class SearchWarning(UserWarning):
    """Something the user should know about a finished search (e.g. no evaluated arch meets a budget)."""


def default_predictor_factory(name: str, space: SearchSpace, seed: int = 0):
    """The search's default source of predictors: ``predictors.make_predictor`` (imported on first use).

    Any ``factory(name, space, seed) -> predictor`` with ``fit(archs, y)`` and ``predict(archs) ->
    (mean, std)`` can replace it (``run_search(..., predictor_factory=...)``).
    """
    from predictors import make_predictor
    return make_predictor(name, space, seed=seed)


@dataclass
class SearchConfig:
    """Everything that decides a search (saved, resolved, in the run's ``config.json``).

    ``objectives`` are metric names; your own metric carries its direction (``"energy:min"``).
    ``budgets`` maps a minimised metric to its maximum (numbers or ``"20M"``-style text).
    ``evaluations`` counts every real evaluation, baselines and failures included. ``initial``
    random archs join the baselines in round 0 (default ``evaluations // 4`` within [5, 50]).
    ``predictor`` names the accuracy predictor (default ``auto``: picked per round by
    cross-validated Kendall tau). ``eval_timeout`` (seconds) turns a slow evaluation into a
    recorded failure; more than ``max_failures`` failures (default 20 % of ``evaluations``) stop
    the search with an error, every result kept. ``reference_point`` (one value per objective,
    natural units) fixes the hypervolume reference, so runs compare; default: from the baselines.
    """

    objectives: tuple[str, ...] = ("accuracy", "flops")
    budgets: dict[str, float] = field(default_factory=dict)
    evaluations: int = 200
    initial: int | None = None
    per_round: int = 10
    uncertain: int = 3
    generations: int = 60
    population: int = 50
    predictor: str = "auto"
    strategy: str = "predictor"
    seed: int = 0
    target: str | None = None
    eval_timeout: float | None = None
    max_failures: int | None = None
    reference_point: dict | None = None

    def resolved(self) -> "SearchConfig":
        objectives = self.objectives.split(",") if isinstance(self.objectives, str) else self.objectives
        budgets = {n: parse_quantity(v, f"budget on {n}") for n, v in self.budgets.items()}
        initial = self.initial if self.initial is not None else min(50, max(5, self.evaluations // 4))
        failures = self.max_failures
        if failures is None and isinstance(self.evaluations, int):
            failures = max(1, self.evaluations // 5)
        return replace(self, objectives=tuple(o.strip() for o in objectives), budgets=budgets, initial=initial,
                       max_failures=failures)

    def check(self, names: Mapping[str, str] | None = None) -> None:
        """Raise :class:`SupernetError` for a mistake; ``names`` maps fields to the caller's option names."""
        for name in list(self.objectives) + list(self.budgets) + (["latency"] if self.target is not None else []):
            if name in self.budgets and any(o.partition(":")[0] == name for o in self.objectives):
                continue  # a budget on one of the objectives: checked with them
            get_metric(name)  # unknown or not yet available (latency) -> one clear error
        if self.strategy not in STRATEGIES:
            raise SupernetError(f"{option_name('strategy', names)} must be one of {list(STRATEGIES)}, got "
                                f"{self.strategy!r}")
        for key, low in (("evaluations", MIN_FIT), ("per_round", 1), ("generations", 1), ("population", 4),
                         ("initial", 0), ("uncertain", 0), ("max_failures", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SupernetError(f"{option_name(key, names)} must be an integer >= {low}, got {value!r}")
        if self.uncertain > self.per_round:
            raise SupernetError(f"{option_name('uncertain', names)} ({self.uncertain}) cannot exceed "
                                f"{option_name('per_round', names)} ({self.per_round})")
        timeout = self.eval_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not math.isfinite(timeout) or timeout <= 0):
            raise SupernetError(f"{option_name('eval_timeout', names)} must be a positive number of seconds, "
                                f"got {timeout!r}")

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
    """What a search found: every real evaluation (failures included, see ``status``) and the feasible front.

    Rows are flat dicts with ``arch`` as a dict. ``warnings`` holds what was also issued as
    :class:`SearchWarning` (e.g. no evaluated arch meets a budget on a measured metric).
    """

    run_dir: Path | None
    evaluations: list[dict]
    front: list[dict]
    hypervolume: float
    reference: dict | None
    picks: dict
    failures: int = 0
    warnings: list = field(default_factory=list)


# -- one search ------------------------------------------------------------------------
class _Run:
    """The store of real evaluations plus everything written about them (CSV, log, state, bar)."""

    def __init__(self, plan: SearchPlan, cfg: SearchConfig, evaluator, run_dir: Path | None, progress: bool,
                 tensorboard: bool, predictor_factory: Callable, witness: Arch | None = None):
        self.plan, self.cfg, self.run_dir, self.factory = plan, cfg, run_dir, predictor_factory
        self.witness = witness  # an arch meeting the cost budgets that random sampling could not find
        rows = read_evaluations(run_dir / CSV, plan.space) if run_dir and (run_dir / CSV).exists() else []
        state = read_json(run_dir / STATE, "search state") if run_dir and (run_dir / STATE).exists() else {}
        self.next_round = int(state.get("next_round", 0))
        self.bar = tqdm(total=cfg.evaluations, initial=len(rows), desc="search", unit="eval",
                        disable=not progress or None)
        self.store = EvaluationStore(plan, as_evaluator(evaluator, cfg.eval_timeout), cfg.evaluations, rows,
                                     self._on_new, cfg.max_failures)
        self.log = RunLog(run_dir, tensorboard) if run_dir else None
        self._reference = None
        self.split = None  # the data split evaluated metrics come from, when the caller says (source["split"])
        self.chosen: dict[str, str] = {}

    def _on_new(self, ev) -> None:
        self.bar.update(1)
        if self.run_dir:
            write_evaluations(self.run_dir / CSV, self.plan, self.store.rows)

    def baselines(self) -> list[tuple[Arch, str]]:
        """(arch, names) of the smallest, largest and median archs (and the budget check's ``witness``, if
        it needed one); equal archs share one entry."""
        names: dict[Arch, list[str]] = {}
        for name in ("smallest", "largest", "median"):
            names.setdefault(self.plan.space.canonical(getattr(self.plan.space, name)()), []).append(name)
        if self.witness is not None:
            names.setdefault(self.witness, []).append("witness")
        return [(arch, "+".join(n)) for arch, n in names.items()]

    @property
    def reference(self):
        """Fixed once known: the user's point, else from the ok baselines (else the ok rows of round 0)."""
        if self._reference is None:
            ok = [e for e in self.store.rows if e.ok and e.round == 0]
            base = [e.metrics for e in ok if e.baseline] or [e.metrics for e in ok]
            if self.cfg.reference_point or base:
                self._reference = plan_reference(self.plan, base, self.cfg.reference_point)
        return self._reference

    def front_rows(self) -> list:
        _, pareto = annotate(self.plan, self.store.rows)
        return [e for e, p in zip(self.store.rows, pareto) if p]

    def hypervolume(self) -> float:
        front = [e.metrics for e in self.front_rows()]
        return self.reference.hypervolume(self.plan.objective_matrix(front)) if self.reference and front else 0.0

    def end_round(self, r: int, new: list, predicted: Mapping[Arch, Mapping[str, float]] | None = None) -> None:
        """Log round ``r`` (hypervolume, failures, predictor tau / MAPE on the new real points); skipped when replayed."""
        if r < self.next_round:
            return
        record = {"round": r, "evaluations": len(self.store), "new": len(new), "failures": self.store.failures,
                  "front_size": len(self.front_rows()), "hypervolume": self.hypervolume(),
                  **_predictor_scores(self.plan, [e for e in new if e.ok], predicted or {}),
                  **{f"predictor/{n}": c for n, c in self.chosen.items()}}
        if self.log:
            scalars = {f"search/{k}": v for k, v in record.items()
                       if k != "round" and isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.log.log(record, r, scalars)
            write_pareto(self.run_dir, self.plan, self.store.rows, self.reference, record["hypervolume"], plot=False)
            atomic_write_json(self.run_dir / STATE, {"next_round": r + 1})
        self.next_round = r + 1

    def finish(self) -> SearchResult:
        """Write the final CSV, ``pareto.json`` and ``pareto.png``; warn about unmet budgets; return the result."""
        hv = self.hypervolume()
        notes = _unmet_budgets(self.plan, self.store.rows)
        for note in notes:
            warnings.warn(note, SearchWarning, stacklevel=3)
        if self.run_dir:
            write_evaluations(self.run_dir / CSV, self.plan, self.store.rows)
            summary = write_pareto(self.run_dir, self.plan, self.store.rows, self.reference, hv, split=self.split)
        else:
            summary = summarise(self.plan, self.store.rows, self.reference, hv)
        recs = records(self.plan, self.store.rows)
        return SearchResult(self.run_dir, recs, summary["front"], hv, summary["reference"], summary["picks"],
                            self.store.failures, notes)

    def close(self) -> None:
        self.bar.close()
        if self.log:
            self.log.close()


def _unmet_budgets(plan: SearchPlan, rows: list) -> list[str]:
    """A note when real results exist but none meets every budget, naming the closest arch."""
    ok = [e for e in rows if e.ok]
    if not plan.budgets or not ok or any(plan.feasible(e.metrics) for e in ok):
        return []
    excess = lambda e: max(e.metrics[n] / b - 1 for n, b in plan.budgets.items())  # noqa: E731
    best = min(ok, key=excess)
    over = ", ".join(f"{n}={best.metrics[n]:.4g} (budget {b:.4g})" for n, b in plan.budgets.items())
    return [f"no evaluated arch meets the budgets; the closest is evaluation {best.index} {best.arch.to_json()} "
            f"with {over}"]


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _predictor_scores(plan: SearchPlan, new: list, predicted: Mapping[Arch, Mapping[str, float]]) -> dict:
    """Kendall tau and MAPE (%) of the round's predictions on its new real points (None where undefined).

    MAPE = 100 / n * sum |pred - true| / |true| over points with true != 0.
    """
    from scipy.stats import kendalltau
    out = {}
    for name in plan.measured:
        pairs = [(e.metrics[name], predicted[e.arch][name]) for e in new if e.arch in predicted]
        true, pred = np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)
        ok = true != 0
        tau = float(kendalltau(true, pred).statistic) if len(pairs) >= 2 else None
        out[f"tau/{name}"] = _finite(tau)
        out[f"mape/{name}"] = _finite(float(100 * np.mean(np.abs(pred[ok] - true[ok]) / np.abs(true[ok])))) \
            if ok.any() else None
    return out


# -- strategies ------------------------------------------------------------------------
def _rounds(run: _Run) -> None:
    """Predictor-guided (or random) rounds until the budget of real evaluations is spent."""
    cfg, store, r = run.cfg, run.store, run.next_round
    while len(store) < cfg.evaluations:
        rng = np.random.default_rng([cfg.seed, r])
        prior = store.before(r)
        seen = {e.arch for e in prior}  # failures included: never proposed again
        good = [e for e in prior if e.ok]
        room = cfg.evaluations - len(prior)
        predicted = {}
        if r == 0:
            base = run.baselines()
            extra = sample_feasible(run.plan, rng, cfg.initial, {a for a, _ in base})
            todo = base + [(a, "") for a in extra]
        elif cfg.strategy == "random" or len(good) < MIN_FIT:
            todo = [(a, "") for a in sample_feasible(run.plan, rng, min(room, cfg.per_round), seen)]
        else:
            picked, predicted = _guided(run, good, seen, rng, min(room, cfg.per_round))
            todo = [(a, "") for a in picked]
        todo = todo[:room]
        new = list({e.index: e for e in store.evaluate_many([a for a, _ in todo], r, [l for _, l in todo])}.values())
        if not new:
            break  # nothing left to propose: the space (or its feasible part) is exhausted
        run.end_round(r, new, predicted)
        r += 1


def _guided(run: _Run, prior: list, seen: set, rng: np.random.Generator, n: int) -> tuple[list[Arch], dict]:
    """Fit the predictors on the ok results ``prior``, run NSGA-II on them, choose ``n`` new archs (not in ``seen``)."""
    plan, cfg = run.plan, run.cfg
    known = {e.arch: e.metrics for e in prior}
    predictors, scales = {}, {}
    for name in plan.measured:
        y = np.array([e.metrics[name] for e in prior], dtype=float)
        predictors[name] = run.factory(cfg.predictor, plan.space, cfg.seed).fit([e.arch for e in prior], y)
        scales[name] = float(y.std()) or 1.0
        if getattr(predictors[name], "chosen", None):
            run.chosen[name] = predictors[name].chosen
    scorer = Scorer(plan, known, _predictions(predictors, scales))
    decoder = Decoder(plan.space)
    problem = SearchProblem(plan, scorer, decoder)
    feasible = [e for e in prior if plan.feasible(e.metrics)]
    F = plan.objective_matrix([e.metrics for e in feasible])
    elites = [feasible[i].arch for front in fronts(F) for i in front]
    algorithm = make_nsga2(decoder, cfg.population, initial_population(problem, elites, cfg.population, rng))
    minimize(problem, algorithm, ("n_gen", cfg.generations), seed=int(rng.integers(2**31)), copy_algorithm=False)
    n_uncertain = min(cfg.uncertain, n) if predictors else 0
    picked = select_candidates(plan, scorer, seen, n - n_uncertain, n_uncertain, run.reference)
    if len(picked) < n:
        picked += sample_feasible(plan, rng, n - len(picked), seen | set(picked))
    return picked, {a: scorer.memo[a][0] for a in picked if a in scorer.memo}


def _predictions(predictors: dict, scales: dict) -> Callable:
    """``measure(archs)`` for :class:`Scorer`: predicted means; uncertainty = sum of std / target std."""
    def measure(archs):
        out = {name: p.predict(archs) for name, p in predictors.items()}
        return [({n: float(out[n][0][i]) for n in out}, sum(float(out[n][1][i]) / scales[n] for n in out))
                for i in range(len(archs))]
    return measure


def _nsga2(run: _Run, stale_limit: int = 20) -> None:
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
    Failure]`` (see :mod:`supernet.evaluators`); an exception, a timeout, a NaN or a missing metric is
    a recorded failure, never a crash. ``costs`` maps metric names to exact functions of the arch
    (e.g. ``{"flops": f, "params": g}``); a cost that raises, is NaN or negative fails that arch.
    ``out`` is the run folder (``None``: nothing is written, nothing can be resumed). ``resume``
    continues ``out`` with its saved config; a budget nothing can meet raises at once, before
    anything is evaluated or written. ``source`` is recorded in ``config.json``.
    ``predictor_factory(name, space, seed)`` builds predictors (default
    :func:`default_predictor_factory`). ``option_names`` maps config fields (``budgets.flops``,
    ``evaluations``...) to the caller's option names for messages (the CLI passes its flags).
    More than ``max_failures`` failures raise :class:`TooManyFailures` whose ``.result`` holds
    everything found so far.
    """
    if resume:
        config = _saved_config(out, config, space)
    cfg = (config or SearchConfig()).resolved()
    cfg.check(option_names)
    plan = make_plan(space, cfg.objectives, cfg.budgets, costs)
    if cfg.reference_point is not None:
        reference_values(plan, cfg.reference_point)
    factory = predictor_factory or default_predictor_factory
    if cfg.strategy == "predictor":
        factory(cfg.predictor, space, cfg.seed)  # an unknown predictor fails here, before anything runs
    witness = check_reachable(plan, np.random.default_rng([cfg.seed, 7919]), option_names)
    run_dir = None
    if out is not None:
        run_dir = prepare_run_dir(out, "search", resume=resume, overwrite=overwrite)
        if not resume:
            atomic_write_json(run_dir / "config.json", {"search": cfg.to_dict(), "space": space_signature(space),
                                                        "costs": sorted(plan.costs), "source": source or {}})
    run = _Run(plan, cfg, evaluator, run_dir, progress, tensorboard, factory, witness)
    run.split = (source or {}).get("split")
    try:
        (_nsga2 if cfg.strategy == "nsga2" else _rounds)(run)
    except TooManyFailures as exc:
        exc.result = run.finish()
        run.close()
        raise
    try:
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
    saved = SearchConfig.from_dict(data["search"]).resolved()
    if config is not None and config.resolved().to_dict() != saved.to_dict():
        diff = sorted(k for k, v in config.resolved().to_dict().items() if saved.to_dict()[k] != v)
        raise SupernetError(f"resume continues the saved search config, which differs in {diff}; drop those options")
    return saved
