"""Three targets in one search against three single-target searches, on the OFA table oracle.

Devices (:data:`benchmarks.ofa_oracle.DEVICES`): a phone (depthwise-bound), a server CPU (wide
SIMD, per-layer overhead) and a GPU (launch-bound), each a per-block latency table over OFA
MobileNetV3's space; accuracy from the oracle's predictor (one call = one accuracy evaluation).
Per seed:

- **single**: one ``run_search`` per device with ``--evaluations N`` (objectives accuracy and that
  device's latency, under its budget): ``3 N`` accuracy evaluations in all;
- **multi**: one ``run_search_targets`` over the three devices with ``round(ratio * 3 N)`` shared
  evaluations (default ratio 0.44).

Reported: accuracy evaluations of both (``evaluations_ratio`` = multi / the three singles; goal
<= 0.45), wall and CPU time, and per device the hypervolume of its front (accuracy vs latency, a
fixed reference: accuracy 0.70, latency = the budget) for multi and every single-search seed:
multi's is "within the spread" when it is >= the lowest single-target value over the seeds.

Every search runs the pace of real subnet evaluations (``SearchConfig.cheap=False``: rounds of
``per_round``, growing by ``growth``), which is what one search for several devices saves, and
which would otherwise be decided from the oracle's wall time per call and so change with the
machine's load (:mod:`supernet.nas.pace`); ``--pace cheap`` runs the table oracle's own pace (rounds
doubling, a quarter of each on the front's neighbours).

    python -m benchmarks.bench_multi_target                     # N=150, seeds 0,1,2
    python -m benchmarks.bench_multi_target --evaluations 300 --seeds 0,1,2,3
    python -m benchmarks.bench_multi_target --evaluations 100 --predictor ridge --pace cheap \
        --out benchmarks/results/bench_multi_target_cheap.json
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

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = {"phone": 20.0, "server": 10.0, "gpu": 9.5}
FLOOR = 0.70  # accuracy of the hypervolume reference point


def _hv(front: list[dict], budget: float) -> float:
    from supernet.nas.pareto import hypervolume
    return hypervolume([{"accuracy": r["accuracy"], "latency": r["latency"]} for r in front],
                       {"accuracy": FLOOR, "latency": budget})


def _timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def summarise(single: dict, multi: list, setup: dict) -> dict:
    """The JSON: ``evaluations_ratio``, wall / CPU time, per device the hypervolumes of both and whether multi's
    mean is within the single-target runs' spread (>= their lowest)."""
    evals_single = sum(r["accuracy_evaluations"] for rows in single.values() for r in rows)
    evals_multi = sum(r["accuracy_evaluations"] for r in multi)
    per_device = {}
    for d in single:
        hv = [r["hypervolume"] for r in single[d]]
        mhv = [m["hypervolume"][d] for m in multi]
        per_device[d] = {"budget_ms": BUDGETS[d], "single_hypervolume": hv, "multi_hypervolume": mhv,
                         "single_min_max": [min(hv), max(hv)], "single_mean_std": [float(np.mean(hv)), float(np.std(hv))],
                         "multi_mean": float(np.mean(mhv)),
                         "multi_within_spread": bool(np.mean(mhv) >= min(hv)),
                         "single_best": [r["best"] for r in single[d]], "multi_best": [m["best"][d] for m in multi]}
    out = {"setup": {"oracle": "OFA MobileNetV3 space, DyNAS-T-fitted accuracy MLP, per-block device tables",
                     **setup, "budgets_ms": BUDGETS,
                     "hypervolume_reference": {"accuracy": FLOOR, "latency": "the device's budget"}},
           "evaluations_ratio": evals_multi / evals_single,
           "accuracy_evaluations": {"multi": evals_multi, "three_singles": evals_single},
           "wall_s": {"multi": sum(m["wall_s"] for m in multi),
                      "three_singles": sum(r["wall_s"] for rows in single.values() for r in rows)},
           "cpu_s": {"multi": sum(m["cpu_s"] for m in multi),
                     "three_singles": sum(r["cpu_s"] for rows in single.values() for r in rows)},
           "per_device": per_device, "single": single, "multi": multi,
           "goal": {"evaluations_ratio_max": 0.45, "hypervolume": "multi >= the lowest single-target run"},
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": 1,
                       "load_average_at_end": os.getloadavg()}}
    return out


def from_log(path: str) -> tuple[dict, list]:
    """``(single, multi)`` from the JSON lines a run printed (a run stopped early keeps its finished seeds)."""
    single, multi = {d: [] for d in BUDGETS}, []
    for line in Path(path).read_text().splitlines():
        if line.startswith('{"single"'):
            row = json.loads(line)
            single[row.pop("single")].append(row)
        elif line.startswith('{"multi"'):
            multi.append(json.loads(line)["multi"])
    seeds = {m["seed"] for m in multi}
    return {d: [r for r in rows if r["seed"] in seeds] for d, rows in single.items()}, multi


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--evaluations", type=int, default=150, help="evaluations of each single-target search")
    p.add_argument("--ratio", type=float, default=0.44, help="multi-target evaluations / the singles' sum")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--predictor", default="auto")
    p.add_argument("--pace", choices=("real", "cheap"), default="real",
                   help="the search pace: real subnet evaluations (default) or cheap table calls")
    p.add_argument("--out", default=str(RESULTS / "bench_multi_target.json"))
    p.add_argument("--from-log", help="rebuild the JSON from the rows a run printed (its finished seeds) and exit")
    args = p.parse_args(argv)
    if args.from_log:
        single, multi = from_log(args.from_log)
        out = summarise(single, multi, {"evaluations_per_single_search": args.evaluations, "multi_evaluations":
                                        multi[0]["accuracy_evaluations"], "seeds": [m["seed"] for m in multi],
                                        "predictor": args.predictor, "pace": args.pace, "from_log": True})
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
        print(json.dumps({k: out[k] for k in ("evaluations_ratio", "wall_s", "cpu_s")}))
        return out
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    from predictors import make_predictor
    from supernet import SearchConfig, run_search
    from supernet.nas.targets import run_search_targets

    from .ofa_oracle import OfaOracle
    oracle = OfaOracle()
    devices = {d: oracle.device(d) for d in BUDGETS}
    seeds = [int(s) for s in args.seeds.split(",")]
    multi_n = round(args.ratio * len(devices) * args.evaluations)
    single, multi = {d: [] for d in devices}, []
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            base = dict(objectives=("accuracy", "latency"), seed=seed, predictor=args.predictor,
                        cheap=args.pace == "cheap")
            for d, fn in devices.items():
                cfg = SearchConfig(**base, budgets={"latency": BUDGETS[d]}, evaluations=args.evaluations)
                before = oracle.calls
                res, wall, cpu = _timed(lambda: run_search(oracle.space, oracle, cfg, costs={"latency": fn},
                                                           out=Path(tmp) / f"s{seed}{d}", tensorboard=False,
                                                           predictor_factory=make_predictor))
                single[d].append({"seed": seed, "accuracy_evaluations": oracle.calls - before, "wall_s": round(wall, 2),
                                  "cpu_s": round(cpu, 2), "hypervolume": _hv(res.front, BUDGETS[d]),
                                  "best": res.picks["max-accuracy-under-budget"]["accuracy"]})
                print(json.dumps({"single": d, **single[d][-1]}), flush=True)
            cfg = SearchConfig(**base, evaluations=multi_n)
            before = oracle.calls
            res, wall, cpu = _timed(lambda: run_search_targets(oracle.space, oracle, cfg, devices, BUDGETS,
                                                               out=Path(tmp) / f"m{seed}", tensorboard=False,
                                                               predictor_factory=make_predictor))
            multi.append({"seed": seed, "accuracy_evaluations": oracle.calls - before, "wall_s": round(wall, 2),
                          "cpu_s": round(cpu, 2),
                          "hypervolume": {d: _hv(r.front, BUDGETS[d]) for d, r in res.targets.items()},
                          "best": {d: r.picks["max-accuracy-under-budget"]["accuracy"] for d, r in res.targets.items()},
                          "picks": res.table})
            print(json.dumps({"multi": {k: v for k, v in multi[-1].items() if k != "picks"}}), flush=True)
    out = summarise(single, multi, {"evaluations_per_single_search": args.evaluations, "multi_evaluations": multi_n,
                                     "seeds": seeds, "predictor": args.predictor, "pace": args.pace})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("evaluations_ratio", "wall_s", "cpu_s")}))
    print(json.dumps({d: {k: v[k] for k in ("single_min_max", "multi_mean", "multi_within_spread")}
                      for d, v in out["per_device"].items()}))
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
