"""Benchmark: picks under one deployed (int8) latency budget, by fp32 latency and by int8 latency.

A short supernet run (trained here on ``--data``: MNIST-1D signals or 28 px MNIST digits; or ``--run``),
``--archs`` random archs plus the smallest and largest. For each arch, measured (nothing assumed):
validation accuracy in fp32 and of its int8 model (post-training static quantisation calibrated on the
run's BN calibration batches, by ``--runtime``: ONNX Runtime QDQ per-channel, or OpenVINO NNCF:
:mod:`supernet.evaluation.int8`), and whole-subnet latency on the runtime's fp32 and int8 targets
(1 thread, interleaved rounds). The budget is on the deployed int8 latency (default: the median int8
latency of the archs). The picks (:func:`compare`): the int8 target's (int8 accuracy within the budget in
int8 latency), the fp32 target's under the same number, and the fp32 target's under the budget scaled by
the median int8/fp32 latency ratio (a search that assumes int8 changes every arch's latency alike).
``int8_pick_wins_by`` = the int8 pick's int8 accuracy - the scaled fp32 pick's. Also: how well "int8
accuracy = fp32 accuracy + mean measured delta" predicts the int8 accuracy (Kendall tau, mean absolute
error over the archs).

    python -m benchmarks.bench_int8 [--data mnist] [--runtime openvino] [--archs 30] [--steps 600]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from predictors.metrics import kendall_tau
from supernet.hardware.rounds import MeasureConfig, latency_ms, measure_subnets
from supernet.io.files import atomic_write_json

RUNTIMES = {"onnxruntime": ("onnxruntime-cpu", "onnxruntime-cpu-int8"),
            "openvino": ("openvino-cpu", "openvino-cpu-int8")}


def train_run(folder: str, steps: int, seed: int, data: str = "mnist1d"):
    from supernet.api import train
    from supernet.training.train_config import TrainConfig
    cfg = TrainConfig(data=data, samples=4000 if data == "mnist1d" else None, steps=steps, batch_size=128, lr=0.1,
                      warmup_steps=50, checkpoint_every=steps, seed=seed, tensorboard=False, progress=False, threads=1)
    return train(cfg, folder)


def pick(rows, accuracy: str, latency: str, budget: float) -> dict | None:
    """The most accurate row with ``row[latency] <= budget`` (ties: the faster), or None."""
    feasible = [r for r in rows if r[latency] <= budget]
    return max(feasible, key=lambda r: (r[accuracy], -r[latency])) if feasible else None


def compare(rows: list[dict], budget_ms: float | None) -> dict:
    """The picks under one budget on the deployed (int8) latency (default: the median int8 latency).

    - ``int8_pick``: most accurate in int8 within the budget in int8 latency (a search on the int8 target);
    - ``fp32_pick``: most accurate in fp32 within the budget in fp32 latency (a search on the fp32 target,
      its pick then quantised): it may break the budget once deployed;
    - ``uniform_pick``: most accurate in fp32 within ``budget / s`` in fp32 latency, ``s`` the median measured
      int8/fp32 latency ratio (a search that assumes int8 scales every arch's latency alike).
    ``int8_pick_wins_by`` = int8 accuracy of the int8 pick - that of the uniform pick (both deployed in int8);
    ``*_within_budget_in_int8`` says whether a pick meets the budget once deployed."""
    int8_over_fp32 = float(np.median([r["int8_ms"] / r["fp32_ms"] for r in rows]))
    budget = budget_ms or float(np.median([r["int8_ms"] for r in rows]))
    p8 = pick(rows, "int8_accuracy", "int8_ms", budget)
    p32 = pick(rows, "fp32_accuracy", "fp32_ms", budget)
    uniform = pick(rows, "fp32_accuracy", "fp32_ms", budget / int8_over_fp32)
    acc32, acc8 = (np.array([r[k] for r in rows]) for k in ("fp32_accuracy", "int8_accuracy"))
    delta = float(np.mean(acc8 - acc32))
    ratios = [r["int8_ms"] / r["fp32_ms"] for r in rows]
    within = {f"{name}_within_budget_in_int8": (p is not None and p["int8_ms"] <= budget)
              for name, p in (("fp32_pick", p32), ("uniform_pick", uniform))}
    return {"budget_ms": budget, "int8_over_fp32_latency": {"median": int8_over_fp32, "min": min(ratios),
                                                             "max": max(ratios)},
            "int8_pick": p8, "fp32_pick": p32, "uniform_pick": uniform, **within,
            "picks_differ": bool(p8 and uniform and p8["arch"] != uniform["arch"]),
            "int8_pick_wins_by": (p8["int8_accuracy"] - uniform["int8_accuracy"]) if p8 and uniform else None,
            "delta_predictor": {"mean_delta": delta, "kendall_tau": kendall_tau(acc8, acc32 + delta),
                                "mean_abs_error": float(np.mean(np.abs(acc32 + delta - acc8)))}}


def _describe(p: dict | None) -> str:
    if p is None:
        return "none fits"
    return (f"fp32 acc {p['fp32_accuracy']:.4f}, int8 acc {p['int8_accuracy']:.4f}, fp32 {p['fp32_ms']:.3f} ms, "
            f"int8 {p['int8_ms']:.3f} ms")


def summary(r: dict) -> str:
    ratio = r["int8_over_fp32_latency"]
    return (f"int8/fp32 latency {ratio['median']:.2f} (range {ratio['min']:.2f}-{ratio['max']:.2f}) | budget "
            f"{r['budget_ms']:.3f} ms (int8) | int8 pick: {_describe(r['int8_pick'])} | uniform-ratio pick: "
            f"{_describe(r['uniform_pick'])} (within: {r['uniform_pick_within_budget_in_int8']}) | fp32 pick: "
            f"{_describe(r['fp32_pick'])} (within: {r['fp32_pick_within_budget_in_int8']}) | differ "
            f"{r['picks_differ']}, wins by {r['int8_pick_wins_by']} | int8 = fp32 + "
            f"{r['delta_predictor']['mean_delta']:+.4f}: tau {r['delta_predictor']['kendall_tau']:.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a trained run (default: train a short MNIST-1D run here)")
    parser.add_argument("--data", default="mnist1d", help="built-in data set of the run trained here: mnist1d "
                        "(1-D signals) or mnist (28 px digits, the 2-D mobilenet variant)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-ms", type=float, help="the deployed (int8) latency budget; default: the median int8 "
                        "latency of the archs")
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), default="onnxruntime",
                        help="the runtime that quantises, scores and times (its fp32 and int8 targets)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/bench_int8.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from supernet.evaluation.checkpoint import CheckpointEvaluator
    from supernet.evaluation.int8 import Int8Evaluator
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_run(os.path.join(tmp, "run"), args.steps, args.seed, args.data)
        trained_s = time.perf_counter() - start
        fp32 = CheckpointEvaluator(run, calib_batches=2)
        space, rng = fp32.space, np.random.default_rng(args.seed)
        drawn = [space.sample(rng) for _ in range(args.archs)]
        archs = list(dict.fromkeys([space.smallest(), space.largest(), *drawn]))
        int8 = Int8Evaluator(fp32, args.runtime)
        scores = [int8(a) for a in archs]
    evaluated_s = time.perf_counter() - start - trained_s
    lat = {t: measure_subnets(space, archs, MeasureConfig(target=t, threads=args.threads, warmup=3, repeats=10,
                                                          rounds=args.rounds))
           for t in RUNTIMES[args.runtime]}
    t32, t8 = RUNTIMES[args.runtime]
    rows = [{"arch": a.to_dict(), "fp32_accuracy": s["fp32_accuracy"], "int8_accuracy": s["accuracy"],
             "fp32_ms": latency_ms(lat[t32][i]), "int8_ms": latency_ms(lat[t8][i]),
             "flops": s["flops"]} for i, (a, s) in enumerate(zip(archs, scores))]
    result = {"machine": platform.machine(), "torch": torch.__version__, "threads": args.threads,
              "statistic": MeasureConfig.statistic,
              "load_average": os.getloadavg(), "data": args.data, "runtime": args.runtime, "archs": len(rows),
              "train_steps": None if args.run else args.steps, **compare(rows, args.budget_ms),
              "seconds": {"train": trained_s, "evaluate": evaluated_s,
                          "latency": time.perf_counter() - start - trained_s - evaluated_s},
              "rows": rows}
    atomic_write_json(args.out, result)
    print(summary(result) + f" | wrote {args.out}")

if __name__ == "__main__":
    main()
