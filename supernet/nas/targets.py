"""Many targets, one search: accuracy evaluated once per arch, latency from each target's table.

``run_search_targets(space, evaluator, config, targets={"phone": f, "server": g}, budgets={...})``
runs one search whose real evaluations are shared: the evaluator is asked for an arch's
accuracy once, and every target's latency is an exact cost (``targets[name](arch)``, ms; a table
lookup) recorded as the metric ``latency@<name>``. Each round fits the accuracy predictor once
and runs NSGA-II once per target on ``(accuracy, latency@<name>)`` under that target's budget,
then chooses the round's archs for all targets at once (:mod:`supernet.nas.joint`: the
candidates adding the most hypervolume summed over the targets first, so an arch on several
targets' fronts comes first; then per target its spread, uncertain and neighbouring archs; no
arch is evaluated twice). Round 0 evaluates the baselines that meet at least one target's
budget and random archs feasible for each target.

The run folder holds, besides the shared ``evaluations.csv`` (a ``latency@<name>`` column per
target), ``config.json``, ``state.json`` and the log (resume, failures and SIGINT work as in a
single-target search: :mod:`supernet.nas.loop`), one folder per target, ``targets/<name>/``,
which is a complete single-target search folder (``evaluations.csv`` with that target's latency
as ``latency``, ``pareto.json``, ``pareto.png``, ``config.json``): ``supernet export
RUN/targets/<name>`` exports its pick. ``picks.csv`` and ``picks.md`` compare the picks: one row
per target, its pick's accuracy and its latency on every target.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.space import SearchSpace, space_signature
from ..io.files import atomic_write_json, atomic_write_text, read_json
from ..io.runs import prepare_run_dir
from .candidates import sample_feasible
from .joint import propose_targets, split
from .pace import round_size
from .search_config import MIN_FIT, SearchConfig, SearchResult
from .metrics import Metric, register_metric
from .outputs import records, write_evaluations, write_pareto
from .pareto import plan_reference
from .plan import SearchPlan, make_plan
from .reach import check_reachable
from .run import SearchRun, breaks_budget
from .store import Evaluation, TooManyFailures

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
PICK = "max-accuracy-under-budget"


def latency_metric(target: str) -> str:
    """``latency@<target>``: the metric holding ``target``'s latency (ms) in the shared evaluations."""
    return f"latency@{target}"


@dataclass
class TargetsResult:
    """One front, one pick per target (``targets[name]``, a :class:`SearchResult` of that target's folder),
    the comparison of the picks (``table``: one row per target) and the shared evaluations (``shared``)."""

    run_dir: Path | None
    targets: dict
    table: list
    shared: SearchResult

    @property
    def accuracy_evaluations(self) -> int:
        return len(self.shared.evaluations)


# -- plans ---------------------------------------------------------------------------------------
def _target_plans(space: SearchSpace, cfg: SearchConfig, targets: Mapping[str, Callable],
                  budgets: Mapping[str, float | None], costs: Mapping[str, Callable]) -> tuple[SearchPlan, dict]:
    """``(shared plan, {target: plan})``: each target's objectives with ``latency`` -> ``latency@<target>``."""
    objectives = [o for o in cfg.objectives if o.partition(":")[0].strip() != "latency"]
    others = {n: b for n, b in cfg.budgets.items() if n != "latency"}
    all_costs = {**costs, **{latency_metric(t): f for t, f in targets.items()}}
    plans = {}
    for t in targets:
        name = latency_metric(t)
        register_metric(Metric(name, False, f"latency on {t} (ms)"))
        budget = {name: budgets[t]} if budgets.get(t) is not None else {}
        plans[t] = make_plan(space, objectives + [name], {**others, **budget}, all_costs)
    shared = make_plan(space, objectives + [latency_metric(t) for t in targets], others, all_costs)
    return shared, plans


def _as_target(plan: SearchPlan, target: str) -> SearchPlan:
    """A target's plan with its latency named plain ``latency`` (what a single-target folder holds)."""
    rename = {latency_metric(target): "latency"}
    objectives = [m.name if m.name not in rename else "latency" for m in plan.objectives]
    return make_plan(plan.space, objectives, {rename.get(n, n): b for n, b in plan.budgets.items()},
                     {rename.get(n, n): f for n, f in plan.costs.items()})


def _renamed(rows: list[Evaluation], target: str) -> list[Evaluation]:
    name = latency_metric(target)
    out = []
    for e in rows:
        metrics = {("latency" if k == name else k): v for k, v in e.metrics.items()}
        out.append(replace(e, metrics=metrics))
    return out


# -- the search ----------------------------------------------------------------------------------
class TargetsRun(SearchRun):
    """A :class:`SearchRun` over the shared plan whose baselines are those meeting some target's budgets."""

    def __init__(self, plans: dict, witnesses: list, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plans, self.witnesses = plans, witnesses

    def baselines(self) -> list[tuple[Arch, str]]:
        names: dict[Arch, list[str]] = {}
        for name in ("smallest", "largest", "median"):
            arch = self.plan.space.canonical(getattr(self.plan.space, name)())
            if not all(breaks_budget(p, arch) for p in self.plans.values()):
                names.setdefault(arch, []).append(name)
        for arch in self.witnesses:
            names.setdefault(arch, []).append("witness")
        return [(arch, "+".join(n)) for arch, n in names.items()]

    def reference_of(self, plan: SearchPlan, rows: list | None = None):
        """A target's fixed hypervolume reference: from the ok baselines (else round 0), its budget the nadir."""
        ok = [e for e in (self.store.rows if rows is None else rows) if e.ok and e.round == 0]
        base = [e.metrics for e in ok if e.baseline] or [e.metrics for e in ok]
        return plan_reference(plan, base, self.cfg.reference_point) if base or self.cfg.reference_point else None


def _target_rounds(run: TargetsRun) -> None:
    """The rounds of :func:`supernet.nas.loop._rounds`: one predictor fit, one NSGA-II per target and one joint
    choice of the round's archs (:func:`supernet.nas.joint.propose_targets`)."""
    from .loop import fit_predictors
    cfg, store, r, plans = run.cfg, run.store, run.next_round, run.plans
    while len(store) < cfg.evaluations:
        rng = np.random.default_rng([cfg.seed, r])
        prior = store.before(r)
        seen = {e.arch for e in prior}
        good = [e for e in prior if e.ok]
        room = cfg.evaluations - len(prior)
        batch = min(room, round_size(cfg, len(prior), run.cheap))
        todo, predicted = [], {}
        if r == 0:
            base = run.baselines()
            todo = list(base)
            for plan, k in zip(plans.values(), split(cfg.initial, len(plans))):
                todo += [(a, "") for a in sample_feasible(plan, rng, k, seen | {a for a, _ in todo})]
        else:
            measure = None if cfg.strategy == "random" or len(good) < MIN_FIT else \
                fit_predictors(run, run.plan, good, rng, r)
            sizes = dict(zip(plans, split(batch, len(plans))))
            if measure is None:
                for plan, k in zip(plans.values(), sizes.values()):
                    todo += [(a, "") for a in sample_feasible(plan, rng, k, seen | {a for a, _ in todo})]
            else:
                picked, predicted = propose_targets(plans, cfg, measure, good, seen, rng, sizes,
                                                    {t: run.reference_of(p) for t, p in plans.items()}, run.cheap)
                todo += [(a, "") for a in picked]
        todo = list(dict(todo).items())[:room]
        new = run.evaluate_round(todo, r)
        if not new:
            break
        run.end_round(r, new, predicted)
        r += 1


def run_search_targets(space: SearchSpace, evaluator, config: SearchConfig | None, targets: Mapping[str, Callable],
                       budgets: Mapping[str, float | None] | None = None, *,
                       costs: Mapping[str, Callable] | None = None, out: str | Path | None = None,
                       resume: bool = False, overwrite: bool = False, progress: bool = False,
                       tensorboard: bool = True, source: dict | None = None, predictor_factory: Callable | None = None,
                       option_names: Mapping[str, str] | None = None) -> TargetsResult:
    """One search for every target of ``targets`` (name -> exact latency function, ms); see the module doc.

    ``budgets`` maps a target to its latency budget (ms; None or absent: none; default for all:
    ``config.budgets["latency"]``). ``config.evaluations`` counts the shared real evaluations (each
    one accuracy evaluation). Other arguments as in :func:`supernet.nas.loop.run_search`.
    """
    if not targets:
        raise SupernetError("a multi-target search needs at least one target, e.g. --targets cpu,onnxruntime-cpu")
    bad = [t for t in targets if not NAME.fullmatch(str(t))]
    if bad:
        raise SupernetError(f"target name {bad[0]!r} is not allowed; use letters, digits and _ . + -")
    if resume:
        config = _saved(out, config, space, targets)
    cfg = (config or SearchConfig(objectives=("accuracy", "latency"))).resolved()
    cfg.check(option_names)
    if cfg.strategy == "nsga2":
        raise SupernetError("a multi-target search is predictor-guided or random; drop --strategy nsga2")
    limits = {t: (budgets or {}).get(t, cfg.budgets.get("latency")) for t in targets}
    shared, plans = _target_plans(space, cfg, targets, limits, dict(costs or {}))
    if cfg.strategy == "predictor":
        if predictor_factory is None:
            raise SupernetError("a predictor-guided search needs predictor_factory(name, space, seed)")
        predictor_factory(cfg.predictor, space, cfg.seed)
    names = {**(option_names or {}), **{f"budgets.{latency_metric(t)}": f"the latency budget of target {t}"
                                        for t in targets}}
    witnesses = [w for p in plans.values()
                 for w in [check_reachable(p, np.random.default_rng([cfg.seed, 7919]), names)] if w is not None]
    run_dir = None
    if out is not None:
        run_dir = prepare_run_dir(out, "search", resume=resume, overwrite=overwrite)
        if not resume:
            atomic_write_json(run_dir / "config.json", {"search": cfg.to_dict(), "targets": limits,
                                                        "space": space_signature(space),
                                                        "costs": sorted(shared.costs), "source": source or {}})
    run = TargetsRun(plans, witnesses, shared, cfg, evaluator, run_dir, progress, tensorboard, predictor_factory)
    run.split = (source or {}).get("split")
    try:
        _target_rounds(run)
    except TooManyFailures as exc:
        exc.result = _finish(run, cfg, limits, source)
        run.close()
        raise
    except BaseException:
        run.flush()
        run.close()
        raise
    try:
        return _finish(run, cfg, limits, source)
    finally:
        run.close()


def _saved(out, config, space, targets) -> SearchConfig:
    from .loop import saved_config
    saved = saved_config(out, config, space)
    data = read_json(Path(out) / "config.json", "search config")
    if sorted(data.get("targets") or {}) != sorted(targets):
        raise SupernetError(f"the search in {str(out)!r} ran for targets {sorted(data.get('targets') or {})}; "
                            "resume it with those")
    return saved


# -- what it writes --------------------------------------------------------------------------------
def _finish(run: TargetsRun, cfg: SearchConfig, limits: dict, source: dict | None) -> TargetsResult:
    shared = run.finish()
    results = {}
    for t, plan in run.plans.items():
        tplan = _as_target(plan, t)
        rows = _renamed(run.store.rows, t)
        folder = run.run_dir / "targets" / t if run.run_dir else None
        reference = run.reference_of(tplan, rows)
        front = [e.metrics for e, rec in zip(rows, records(tplan, rows)) if rec["is_pareto"]]
        hv = reference.hypervolume(tplan.objective_matrix(front)) if reference and front else 0.0
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            budgets = {n: b for n, b in tplan.budgets.items()}
            atomic_write_json(folder / "config.json", {
                "search": {**cfg.to_dict(), "objectives": [m.name for m in tplan.objectives], "budgets": budgets,
                           "target": t}, "space": space_signature(tplan.space), "costs": sorted(tplan.costs),
                "source": {**(source or {}), "multi_target": str(run.run_dir)}})
            write_evaluations(folder / "evaluations.csv", tplan, rows)
            summary = write_pareto(folder, tplan, rows, reference, hv, split=run.split)
        else:
            from .outputs import summarise
            summary = summarise(tplan, rows, reference, hv)
        results[t] = SearchResult(folder, records(tplan, rows), summary["front"], hv, summary["reference"],
                                  summary["picks"], shared.failures, [])
    table = compare_picks(results, limits)
    if run.run_dir is not None:
        write_table(run.run_dir, table, list(run.plans))
    return TargetsResult(run.run_dir, results, table, shared)


def compare_picks(results: Mapping[str, SearchResult], limits: Mapping[str, float | None]) -> list[dict]:
    """One row per target: its pick (``max-accuracy-under-budget``), the pick's accuracy and its latency
    (table) on every target."""
    rows = []
    for t, result in results.items():
        pick = result.picks.get(PICK) or {}
        row = {"target": t, "budget_ms": limits.get(t), "evaluation": pick.get("index"),
               "accuracy": pick.get("accuracy")}
        for other in results:
            row[f"latency_ms@{other}"] = pick.get("latency") if other == t else pick.get(latency_metric(other))
        if "latency_measured_ms" in pick:
            row["measured_ms"] = pick["latency_measured_ms"]
        row["arch"] = pick.get("arch")
        rows.append(row)
    return rows


def write_table(run_dir: Path, table: list[dict], targets: list[str]) -> None:
    """``picks.csv`` and ``picks.md``: the picks side by side."""
    import csv
    import io
    import json
    columns = ["target", "budget_ms", "evaluation", "accuracy"] + [f"latency_ms@{t}" for t in targets] + \
        (["measured_ms"] if any("measured_ms" in r for r in table) else []) + ["arch"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in table:
        writer.writerow({**row, "arch": json.dumps(row.get("arch"), separators=(",", ":"))})
    atomic_write_text(run_dir / "picks.csv", buf.getvalue())
    atomic_write_text(run_dir / "picks.md", markdown_table(table, targets))


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown_table(table: list[dict], targets: list[str]) -> str:
    """The picks as a markdown table: target, budget, accuracy, latency on each target (ms)."""
    measured = any("measured_ms" in r for r in table)
    head = ["pick for", "budget (ms)", "accuracy"] + [f"{t} (ms)" for t in targets] + (["measured (ms)"] if measured else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        cells = [r["target"], _cell(r["budget_ms"]), _cell(r["accuracy"])] + \
            [_cell(r.get(f"latency_ms@{t}")) for t in targets] + ([_cell(r.get("measured_ms"))] if measured else [])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
