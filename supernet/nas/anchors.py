"""Named archs evaluated beside a search's picks (``supernet search --compare``): anchors.

An anchor is an arch the space names (``load_arch``: e.g. ``ofa:ID``, OFA's own per-device pick, or
``largest``, a JSON file), evaluated with the search's own evaluator (BN recalibrated, the same
validation split) and costs (FLOPs, params, the latency table's prediction on the search's target),
so that the search's picks and the anchors sit in one table at the same budget. ``PREFIX:all``
stands for every name of :meth:`named_archs` with that prefix that meets the search's budgets on
its costs (e.g. ``ofa:all``: each OFA pick of the run's net that fits the budget).

``compare.json`` in the search run: the budgets, the picks and the anchors, one row each
(``name``, the metrics, ``within_budget``, ``arch``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..core.contract import hook
from ..core.errors import SupernetError
from ..io.files import atomic_write_json

ALL = ":all"


def anchor_archs(space, names: Sequence[str], costs: Mapping[str, Callable], budgets: Mapping[str, float]) -> dict:
    """``{name: arch}`` of the ``names`` (in order, each once); ``PREFIX:all`` expands to the space's
    named archs of that prefix whose costs meet ``budgets``. An unknown name is one line (the space's)."""
    chosen = {}
    for name in names:
        if name.endswith(ALL):
            prefix = name[: -len(ALL) + 1]
            known = [n for n in hook(space, "named_archs")() if n.startswith(prefix)]
            if not known:
                raise SupernetError(f"--compare {name}: this space names no arch {prefix}ID")
            for n in known:
                arch = space.load_arch(n)
                if all(costs[k](arch) <= b for k, b in budgets.items() if k in costs):
                    chosen.setdefault(n, arch)
        else:
            chosen.setdefault(name, space.load_arch(name))
    return chosen


def evaluate_anchors(archs: Mapping[str, object], evaluator: Callable, costs: Mapping[str, Callable],
                     budgets: Mapping[str, float]) -> list[dict]:
    """One row per anchor: ``evaluator(arch)`` (the search's metrics), each cost it lacks, whether it
    meets every budget (``within_budget``) and the arch as a dict."""
    rows = []
    for name, arch in archs.items():
        metrics = dict(evaluator(arch))
        metrics.update({k: float(f(arch)) for k, f in costs.items() if k not in metrics})
        within = all(metrics[k] <= b for k, b in budgets.items() if k in metrics)
        rows.append({"name": name, **metrics, "within_budget": within, "arch": arch.to_dict()})
    return rows


def write_compare(run_dir: str | Path, budgets: Mapping[str, float], picks: Mapping[str, dict | None],
                  anchors: list[dict]) -> None:
    """``compare.json``: the search's picks and the anchors side by side."""
    atomic_write_json(Path(run_dir) / "compare.json", {
        "budgets": dict(budgets),
        "picks": {how: row for how, row in picks.items() if row},
        "anchors": anchors})
