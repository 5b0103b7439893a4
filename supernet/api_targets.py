"""The front door of a multi-target search: ``supernet.search_targets`` (``supernet search --targets``).

One supernet, many devices: accuracy is evaluated once per arch and shared by every target; each
target's latency comes from its own table (checked against the device now, see
:mod:`supernet.hardware.drift`), and at the end each target's front is measured for real on that
target (locally, or on Ray on a node tagged ``target:<name>``, every target at once). The run
folder and what it holds: :mod:`supernet.nas.targets`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Mapping, Sequence

from .core.errors import SupernetError
from .core.placement import CPU, Placement
from .core.signals import interruptible


def parse_targets(targets: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (order kept, each once)."""
    items = [targets] if isinstance(targets, str) else list(targets)
    names = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    if not names:
        raise SupernetError("--targets needs at least one target, e.g. --targets cpu,onnxruntime-cpu")
    return list(dict.fromkeys(names))


def parse_budgets(text: str | None, targets: Sequence[str]) -> dict[str, float | None]:
    """``"5"`` (every target) or ``"a=5,b=2"`` (per target; others: none) -> ``{target: ms or None}``."""
    from .nas.quantities import parse_quantity
    out: dict[str, float | None] = {t: None for t in targets}
    if text is None or not str(text).strip():
        return out
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if len(parts) == 1 and "=" not in parts[0]:
        value = parse_quantity(parts[0], "--max-latency-ms")
        return {t: value for t in targets}
    for part in parts:
        name, eq, value = part.partition("=")
        if not eq:
            raise SupernetError(f"--max-latency-ms {text!r}: give one number for every target, or TARGET=MS for each "
                                f"(e.g. {targets[0]}=5)")
        if name.strip() not in out:
            raise SupernetError(f"--max-latency-ms names {name.strip()!r}, which is not among --targets {list(targets)}")
        out[name.strip()] = parse_quantity(value, f"--max-latency-ms for {name.strip()}")
    return out


def search_targets(checkpoint: str | os.PathLike | None, targets: str | Sequence[str], config=None,
                   out: str | os.PathLike | None = None, *, budgets: Mapping[str, float | None] | str | None = None,
                   latency_tables: Mapping[str, str | os.PathLike] | None = None, resume: bool = False,
                   overwrite: bool = False, progress: bool = True, tensorboard: bool = True, calib_batches: int = 8,
                   option_names=None, device: str = "auto", precision: str = "fp32", channels_last: bool = False,
                   ray_address: str | None = None, eval_workers: int | None = None, eval_retries: int = 1,
                   latency_timer=None, measure: bool = True, threads: int | None = None, data: str | None = None):
    """One search over a trained supernet for every target; returns :class:`supernet.nas.targets.TargetsResult`.

    ``targets`` names the targets (``"cpu,onnxruntime-cpu"`` or a list); each needs a latency table
    (``latency_tables[target]``, or its file in ``latency/``). ``budgets`` maps a target to its latency
    budget in ms (or a ``--max-latency-ms`` string: ``"5"`` or ``"cpu=5,onnxruntime-cpu=2"``); default
    for all: ``config.budgets["latency"]``. ``data`` (a ``--data`` value) replaces the run's own data, or gives
    a run of imported weights its data, as in :func:`supernet.search`. ``config.evaluations`` counts the shared
    evaluations. With
    ``measure``, each target's front and pick are measured for real at the end (``front_latency.json`` in
    ``targets/<name>/``; with Ray on a node tagged ``target:<name>``, all targets in parallel). Other
    arguments as in :func:`supernet.search`.
    """
    from dataclasses import replace

    from predictors import make_predictor

    from .api import hold_latency, resumed_source, score_objectives
    from .evaluation.checkpoint import CheckpointEvaluator
    from .hardware.latency_api import find_table
    from .io.checkpoint import run_of
    from .io.runs import check_apart
    from .nas.search_config import SearchConfig
    from .nas.targets import compare_picks, run_search_targets, write_table
    names = parse_targets(targets)
    if resume:
        checkpoint, calib_batches, saved_run = resumed_source(out, checkpoint, calib_batches)
        data = saved_run.get("source", {}).get("data")
        saved = SearchConfig.from_dict(saved_run["search"])
        limits = saved_run.get("targets") or {}
        if sorted(limits) != sorted(names):
            raise SupernetError(f"the search in {str(out)!r} ran for targets {sorted(limits)}; resume it with those")
        config = None
    else:
        config = config or SearchConfig(objectives=("accuracy", "latency"))
        if "latency" not in [o.partition(":")[0] for o in config.resolved().objectives]:
            config = replace(config, objectives=tuple(config.resolved().objectives) + ("latency",))
        config.resolved().check(option_names)
        limits = parse_budgets(budgets, names) if isinstance(budgets, str) or budgets is None else \
            {t: (budgets or {}).get(t) for t in names}
        default = config.resolved().budgets.get("latency")
        limits = {t: b if b is not None else default for t, b in limits.items()}
        saved = config
    if checkpoint is None:
        raise SupernetError("search needs CHECKPOINT: a training run folder or a checkpoint folder")
    here = ray_address is None and eval_workers is None
    placement = Placement.make(device, precision, channels_last, threads) if here else CPU
    evaluator = CheckpointEvaluator(checkpoint, calib_batches, placement, data)
    evaluator.check_data()
    config = score_objectives(config, evaluator.task)
    out = Path(out) if out is not None else Path("runs") / f"search-{time.strftime('%Y%m%d-%H%M%S')}"
    if not resume:
        check_apart(out, [run_of(evaluator.folder)])
    source = {"checkpoint": str(evaluator.folder), "space": evaluator.meta["space"],
              "variant": evaluator.meta.get("variant"), "step": evaluator.meta.get("step"),
              "calib_batches": calib_batches, "split": "val", "targets": names, **({"data": data} if data else {})}
    tables = {t: find_table(t, evaluator.space, (latency_tables or {}).get(t)) for t in names}

    def holds(measure_on=None) -> tuple[dict, dict]:
        """Each table checked against its target now: ``({target: latency cost}, {target: drift})``."""
        costs, drifts = {}, {}
        for t, table in tables.items():
            one: dict = {}
            drifts[t] = hold_latency(table, evaluator.space, one, {}, measure_on(t) if measure_on else None,
                                      latency_timer)
            costs[t] = one["latency"]
        source["latency_drift"] = {t: d.to_dict() for t, d in drifts.items()}
        return costs, drifts

    def run(chosen, costs):
        try:
            with interruptible():
                return run_search_targets(evaluator.space, chosen, config, costs, limits, costs=evaluator.costs,
                                          out=out, resume=resume, overwrite=overwrite, progress=progress,
                                          tensorboard=tensorboard, source=source, predictor_factory=make_predictor,
                                          option_names=option_names)
        except KeyboardInterrupt:
            raise SupernetError(f"interrupted: every finished evaluation is saved in {out}; continue with "
                                f"`supernet search --resume --targets {','.join(names)} --out {out}`") from None

    if here:
        with placement.threads():
            costs, drifts = holds()
            result = run(evaluator, costs)
        if measure:
            from .hardware.front import measure_front
            for t, res in result.targets.items():
                measure_front(res, evaluator.space, tables[t], budget=limits[t], drift=drifts[t], timer=latency_timer)
    else:
        from .distributed.targets import search_targets_on_ray
        result = search_targets_on_ray(run, holds, evaluator, tables, limits, saved, out, ray_address, eval_workers,
                                       eval_retries, device, precision, channels_last, measure)
    result.table = compare_picks(result.targets, limits)
    if result.run_dir is not None:
        write_table(result.run_dir, result.table, names)
    return result
