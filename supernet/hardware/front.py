"""The front of a search measured for real, with its spread, and checked against the latency budget.

Every front arch (and every pick off the front) is measured in ``sessions`` separate sessions,
by default each in a fresh process (a process's memory placement and thread binding are part
of what varies between runs), each session in the table's interleaved rounds. Per arch:

- ``latency_measured_ms``: the median over all round medians of all sessions;
- ``latency_spread_ms``: their ``[p10, p90]``; ``latency_sessions_ms``: each session's median;
- with a latency budget ``B``: ``latency_under_budget``, the share of round medians ``<= B``
  (how sure it is that the arch meets the budget), and ``latency_vs_budget``: ``under``
  (p90 <= B), ``over`` (p10 > B) or ``crosses`` (the spread straddles B).

The picks carry the same fields; a pick or front arch that does not sit clearly under the budget
is flagged in ``front_latency.json``, in ``pareto.json`` (``latency_check``) and in the result's
warnings (the CLI prints them).
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..core.registry import load_space_files, space_files
from ..io.files import atomic_write_json, read_json
from .rounds import latency_ms, measure_subnets, spread
from .timers import Timer

SESSIONS = 2


def in_fresh_process(space, archs, cfg) -> list[dict]:
    """:func:`measure_subnets` run in a new (spawned) Python process, which first imports the space files
    this one loaded from paths (``SUPERNET_SPACES=file.py``), so that the space unpickles there."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), initializer=load_space_files,
                             initargs=(space_files(),)) as pool:
        return pool.submit(measure_subnets, space, archs, cfg).result()


def sessions_of(space, archs, cfg, sessions: int = SESSIONS, measure=None, timer: Timer | None = None,
                fresh: bool = True) -> list[list[dict]]:
    """``sessions`` measurements of every arch, one after another: ``measure(space, archs, cfg)`` when
    given; else :func:`measure_subnets` with ``timer`` (in this process); else in fresh processes
    (``fresh``) or here."""
    if measure is None:
        if timer is not None:
            measure = lambda s, a, c: measure_subnets(s, a, c, timer=timer)  # noqa: E731
        else:
            measure = in_fresh_process if fresh else measure_subnets
    return [measure(space, archs, cfg) for _ in range(sessions)]


def pooled(results: list[dict], budget: float | None) -> dict:
    """One arch's fields (see the module docstring) from its results of every session."""
    rounds = [ms for r in results for ms in r.get("round_ms", [latency_ms(r)])]
    out = {"latency_measured_ms": float(np.median(rounds)), "latency_spread_ms": spread(rounds),
           "latency_sessions_ms": [latency_ms(r) for r in results], "latency_rounds": len(rounds)}
    if budget is not None:
        lo, hi = out["latency_spread_ms"]
        out["latency_under_budget"] = float(np.mean(np.asarray(rounds) <= budget))
        out["latency_vs_budget"] = "under" if hi <= budget else "over" if lo > budget else "crosses"
    return out


UNBOUND = ("best-accuracy",)  # picks whose rule ignores the budgets: measured, never flagged


def budget_notes(front: list[dict], picks: dict, budget: float | None) -> list[str]:
    """Warnings: each pick (bound by the budget) not clearly under it, and how many front archs are not."""
    if budget is None:
        return []
    notes = []
    for how, row in picks.items():
        if row and how not in UNBOUND and row.get("latency_vs_budget", "under") != "under":
            lo, hi = row["latency_spread_ms"]
            notes.append(f"pick {how} (evaluation {row['index']}) measured {row['latency_measured_ms']:.4g} ms "
                         f"(p10-p90 {lo:.4g}-{hi:.4g}) against the {budget:.4g} ms budget: "
                         f"{row['latency_vs_budget']}, under it in {100 * row['latency_under_budget']:.0f}% of rounds")
    flagged = [r for r in front if r.get("latency_vs_budget", "under") != "under"]
    if flagged:
        notes.append(f"{len(flagged)} of {len(front)} front archs are not clearly under the {budget:.4g} ms budget "
                     f"when measured (evaluations {', '.join(str(r['index']) for r in flagged)}); see "
                     "front_latency.json")
    return notes


def measure_front(result, space, table, measure=None, *, budget: float | None = None, sessions: int = SESSIONS,
                  fresh: bool = True, timer: Timer | None = None, drift=None) -> dict:
    """Measure the front and the picks off it (see the module docstring); update the result's rows and
    warnings, write ``front_latency.json`` and the ``latency_check`` of ``pareto.json``; return the check."""
    rows = list(result.front) + [r for r in result.picks.values()
                                 if r and r["index"] not in {f["index"] for f in result.front}]
    rows = list({r["index"]: r for r in rows}.values())
    archs = [space.make(r["arch"]) for r in rows]
    per_session = sessions_of(space, archs, table.cfg, sessions, measure, timer, fresh) if archs else []
    for i, row in enumerate(rows):
        row.update(pooled([session[i] for session in per_session], budget))
    notes = budget_notes(result.front, result.picks, budget)
    result.warnings.extend(notes)
    check = {"target": table.cfg.target, "fingerprint": table.fingerprint, "sessions": sessions,
             "fresh_processes": measure is None and timer is None and fresh, "rounds_per_session": table.cfg.rounds,
             "budget_ms": budget, "drift": drift.to_dict() if drift is not None else None,
             "flagged": [r["index"] for r in result.front if r.get("latency_vs_budget", "under") != "under"] +
                        [r["index"] for how, r in result.picks.items() if r and how not in UNBOUND
                         and r not in result.front and r.get("latency_vs_budget", "under") != "under"],
             "notes": notes}
    if result.run_dir is not None:
        _write(Path(result.run_dir), rows, result.picks, check)
    result.latency_check = check
    return check


MEASURED = ("latency_measured_ms", "latency_spread_ms", "latency_sessions_ms", "latency_rounds",
            "latency_under_budget", "latency_vs_budget")


def _write(run_dir: Path, rows: list[dict], picks: dict, check: dict) -> None:
    """``front_latency.json``, and the measured fields added to ``pareto.json``'s front and picks."""
    fields = lambda r: {k: r[k] for k in MEASURED if k in r}  # noqa: E731
    atomic_write_json(run_dir / "front_latency.json", {
        **check, "front": [{"index": r["index"], "arch": r["arch"], "latency_predicted_ms": r.get("latency"),
                            **fields(r)} for r in rows],
        "picks": {how: (r["index"] if r else None) for how, r in picks.items()}})
    path = run_dir / "pareto.json"
    if path.exists():
        summary, by_index = read_json(path, "pareto.json"), {r["index"]: r for r in rows}
        for row in summary.get("front", []) + [r for r in summary.get("picks", {}).values() if r]:
            row.update(fields(by_index.get(row["index"], {})))
        summary["latency_check"] = check
        atomic_write_json(path, summary)


def measure_rows(rows: list[dict], space, table, *, budget: float | None = None, sessions: int = SESSIONS,
                 timer: Timer | None = None) -> None:
    """Measure the archs of ``rows`` (e.g. a search's anchors, ``--compare``) as :func:`measure_front`
    measures the front: ``sessions`` fresh processes (or ``timer``), the same fields added to each row."""
    archs = [space.make(r["arch"]) for r in rows]
    per_session = sessions_of(space, archs, table.cfg, sessions, None, timer) if archs else []
    for i, row in enumerate(rows):
        row.update(pooled([session[i] for session in per_session], budget))
