"""Search speed on a cheap oracle, side by side with OFA's evolutionary search at equal oracle calls.

The oracle (:mod:`benchmarks.ofa_oracle`): OFA MobileNetV3's space, an accuracy predictor fitted
on DyNAS-T's ImageNet measurements and a phone-like per-block latency table. For each budget
of calls (default 300, 1,000, 3,000, 10,000, 50,000) this runs, on one thread:

- **ours**: ``supernet.run_search`` with the default strategy and options (predictor-guided
  NSGA-II, ``auto`` predictor), objectives accuracy and latency, latency <= ``--budget`` ms as an
  exact cost function, writing its run folder like any search; calls = real evaluations;
- **evolution**: OFA's evolutionary search (:mod:`benchmarks.evolution`) for the largest budget of
  calls, its best-so-far read at each budget.

Reported per budget and seed: the best accuracy meeting the budget (both sides), our wall and CPU
time, evaluations per minute (wall, and per CPU-minute: on a shared machine the process's CPU time
is what one thread spent), the rounds the search made and whether it found the evaluations cheap
(:mod:`supernet.nas.pace`), whether ours >= evolution, and the load average before and after. A discarded
search of ``WARM_UP`` calls runs first, so the first row does not pay the process's one-time imports
(matplotlib's for ``pareto.png``, SciPy's) and caches (fonts). Run:

    python -m benchmarks.bench_search_speed                       # all budgets, seed 0
    python -m benchmarks.bench_search_speed --calls 300,1000 --seeds 0,1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path


RESULTS = Path(__file__).resolve().parent / "results"
WARM_UP = 100  # calls of the discarded search that loads what a process loads once


def ours(oracle, budget: float, calls: int, seed: int, predictor: str = "auto") -> dict:
    from supernet import SearchConfig, run_search
    cfg = SearchConfig(objectives=("accuracy", "latency"), budgets={"latency": budget}, evaluations=calls, seed=seed,
                       predictor=predictor)
    before, load = oracle.calls, os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu = time.perf_counter(), time.process_time()
        result = run_search(oracle.space, oracle, cfg, costs={"latency": oracle.latency}, out=Path(tmp) / "run",
                            tensorboard=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        state = json.loads((Path(tmp) / "run" / "state.json").read_text())
    feasible = [r["accuracy"] for r in result.evaluations if r["feasible"]]
    return {"calls": calls, "oracle_calls": oracle.calls - before, "evaluations": len(result.evaluations),
            "rounds": 1 + max(r["round"] for r in result.evaluations), "cheap": state.get("cheap"),
            "best": max(feasible) if feasible else None, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "evaluations_per_minute": round(60 * len(result.evaluations) / wall),
            "evaluations_per_cpu_minute": round(60 * len(result.evaluations) / cpu),
            "baselines_over_budget_evaluated": sum(1 for r in result.evaluations if r["baseline"] and not r["feasible"]),
            "load_average_before": [round(v, 2) for v in load],
            "load_average_after": [round(v, 2) for v in os.getloadavg()]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", default="300,1000,3000,10000,50000")
    p.add_argument("--seeds", default="0")
    p.add_argument("--budget", type=float, default=20.0, help="latency budget, ms (default %(default)s)")
    p.add_argument("--predictor", default="auto", help="accuracy predictor of our search (default: the default, auto)")
    p.add_argument("--out", default=str(RESULTS / "bench_search_speed.json"))
    p.add_argument("--from-log", help="rebuild the JSON from the rows a run printed (a run stopped early) and exit")
    args = p.parse_args(argv)
    if args.from_log:
        rows = [json.loads(line) for line in Path(args.from_log).read_text().splitlines() if line.startswith('{"seed"')]
        return _write(args, rows, None, partial=True)
    import torch
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    import predictors  # noqa: F401  (scikit-learn, SciPy: their BLAS is loaded before it is limited)
    import sklearn.neural_network  # noqa: F401
    import supernet.nas.loop  # noqa: F401
    threadpool_limits(1)  # one BLAS thread in every BLAS loaded so far (a limit set earlier misses SciPy's own)
    from .evolution import evolve
    from .ofa_oracle import OfaOracle
    oracle = OfaOracle()  # fitted on one thread too: the same oracle on every machine's BLAS thread count
    calls = [int(c) for c in args.calls.split(",")]
    ours(oracle, args.budget, WARM_UP, 12345, args.predictor)  # imports and caches, not timed
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        start, cpu = time.perf_counter(), time.process_time()
        curve = evolve(oracle, args.budget, max(calls), seed)
        evo_wall, evo_cpu = time.perf_counter() - start, time.process_time() - cpu
        for n in calls:
            row = {"seed": seed, "predictor": args.predictor, **ours(oracle, args.budget, n, seed, args.predictor),
                   "evolution_best": float(curve[n - 1]),
                   "evolution_wall_s": round(evo_wall, 2), "evolution_cpu_s": round(evo_cpu, 2),
                   "evolution_calls": max(calls),
                   "evolution_evaluations_per_minute": round(60 * max(calls) / evo_wall)}
            row["ours_ge_evolution"] = row["best"] is not None and row["best"] >= row["evolution_best"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return _write(args, rows, oracle.train_size)


def _write(args, rows: list, train_size: int | None, partial: bool = False) -> dict:
    calls = sorted({r["calls"] for r in rows})
    per = lambda key: {str(n): [r[key] for r in rows if r["calls"] == n] for n in calls}  # noqa: E731
    out = {"oracle": {"space": "OFA MobileNetV3 w1.0 (ks/e per block, d per stage)", "accuracy": "MLP fitted on "
                      f"{train_size or 'the'} DyNAS-T ImageNet archs", "latency": "per-block phone-like table (ms)",
                      "budget_ms": args.budget}, "partial_run": partial, "warm_up_calls": WARM_UP,
           "goal": {"evaluations_per_minute": 20_000, "best_ge_evolution": "at every budget of calls"},
           "rows": rows,
           "evaluations_per_minute": per("evaluations_per_minute"),
           "evaluations_per_cpu_minute": per("evaluations_per_cpu_minute"),
           "evolution_evaluations_per_minute": sorted({r["evolution_evaluations_per_minute"] for r in rows}),
           "goal_speed_met_at_calls": [n for n in calls if all(v >= 20_000 for v in per("evaluations_per_cpu_minute")[str(n)])],
           "ours_ge_evolution_everywhere": all(r["ours_ge_evolution"] for r in rows),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": 1,
                       "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
