"""Benchmark: the fp32 pick against the int8 pick under one latency budget, both deployed in int8.

A short MNIST-1D supernet run (trained here, or ``--run``), ``--archs`` random archs plus the smallest
and largest. For each arch, measured (nothing assumed): validation accuracy in fp32 and of its int8
model (ONNX Runtime static quantisation, QDQ per-channel, calibrated on the run's BN calibration
batches: :mod:`supernet.evaluation.int8`), and whole-subnet latency on ``onnxruntime-cpu`` and
``onnxruntime-cpu-int8`` (1 thread, interleaved rounds). The budget is the median fp32 latency
(or ``--budget-ms``).

- fp32 pick: the most accurate arch (fp32 accuracy) within the budget in fp32 latency: what a search on
  the fp32 target returns; deployed in int8 it scores its int8 accuracy.
- int8 pick: the most accurate arch in int8 accuracy within the budget in int8 latency: what a search on
  ``onnxruntime-cpu-int8`` returns.
``int8_pick_wins_by`` = int8 pick's int8 accuracy - fp32 pick's int8 accuracy. Also: how well "int8
accuracy = fp32 accuracy + mean measured delta" predicts the int8 accuracy (Kendall tau, mean absolute
error over the archs).

    python -m benchmarks.bench_int8 [--archs 30] [--steps 600] [--threads 1]   # ~10 min on 2 loaded cores
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
from supernet.hardware.rounds import MeasureConfig, measure_subnets
from supernet.io.files import atomic_write_json


def train_run(folder: str, steps: int, seed: int):
    from supernet.api import train
    from supernet.training.train_config import TrainConfig
    cfg = TrainConfig(data="mnist1d", samples=4000, steps=steps, batch_size=128, lr=0.1, warmup_steps=50,
                      checkpoint_every=steps, seed=seed, tensorboard=False, progress=False, threads=1)
    return train(cfg, folder)


def pick(rows, accuracy: str, latency: str, budget: float) -> dict:
    feasible = [r for r in rows if r[latency] <= budget]
    return max(feasible, key=lambda r: (r[accuracy], -r[latency]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a trained run (default: train a short MNIST-1D run here)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-ms", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/bench_int8.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from supernet.evaluation.checkpoint import CheckpointEvaluator
    from supernet.evaluation.int8 import Int8Evaluator
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_run(os.path.join(tmp, "run"), args.steps, args.seed)
        trained_s = time.perf_counter() - start
        fp32 = CheckpointEvaluator(run, calib_batches=2)
        space, rng = fp32.space, np.random.default_rng(args.seed)
        archs = list(dict.fromkeys([space.smallest(), space.largest()] + [space.sample(rng) for _ in range(args.archs)]))
        int8 = Int8Evaluator(fp32, "onnxruntime")
        scores = [int8(a) for a in archs]
    evaluated_s = time.perf_counter() - start - trained_s
    lat = {t: measure_subnets(space, archs, MeasureConfig(target=t, threads=args.threads, warmup=3, repeats=10,
                                                          rounds=args.rounds))
           for t in ("onnxruntime-cpu", "onnxruntime-cpu-int8")}
    rows = [{"arch": a.to_dict(), "fp32_accuracy": s["fp32_accuracy"], "int8_accuracy": s["accuracy"],
             "fp32_ms": lat["onnxruntime-cpu"][i]["median_ms"], "int8_ms": lat["onnxruntime-cpu-int8"][i]["median_ms"],
             "flops": s["flops"]} for i, (a, s) in enumerate(zip(archs, scores))]
    budget = args.budget_ms or float(np.median([r["fp32_ms"] for r in rows]))
    p32, p8 = pick(rows, "fp32_accuracy", "fp32_ms", budget), pick(rows, "int8_accuracy", "int8_ms", budget)
    acc32, acc8 = (np.array([r[k] for r in rows]) for k in ("fp32_accuracy", "int8_accuracy"))
    delta = float(np.mean(acc8 - acc32))
    result = {"machine": platform.machine(), "torch": torch.__version__, "threads": args.threads,
              "load_average": os.getloadavg(), "archs": len(rows), "train_steps": None if args.run else args.steps,
              "budget_ms": budget, "fp32_pick": p32, "int8_pick": p8, "picks_differ": p32["arch"] != p8["arch"],
              "int8_pick_wins_by": p8["int8_accuracy"] - p32["int8_accuracy"],
              "fp32_pick_within_budget_in_int8": p32["int8_ms"] <= budget,
              "int8_speedup_median": float(np.median([r["fp32_ms"] / r["int8_ms"] for r in rows])),
              "delta_predictor": {"mean_delta": delta, "kendall_tau": kendall_tau(acc8, acc32 + delta),
                                  "mean_abs_error": float(np.mean(np.abs(acc32 + delta - acc8)))},
              "seconds": {"train": trained_s, "evaluate": evaluated_s,
                          "latency": time.perf_counter() - start - trained_s - evaluated_s},
              "rows": rows}
    atomic_write_json(args.out, result)
    print(f"budget {budget:.3f} ms | fp32 pick: fp32 acc {p32['fp32_accuracy']:.4f}, int8 acc "
          f"{p32['int8_accuracy']:.4f}, int8 {p32['int8_ms']:.3f} ms (within budget: {p32['int8_ms'] <= budget}) | int8 pick: int8 acc {p8['int8_accuracy']:.4f}, "
          f"int8 {p8['int8_ms']:.3f} ms | wins by {result['int8_pick_wins_by']:+.4f} | differ {result['picks_differ']}")
    print(f"int8 = fp32 + {delta:+.4f}: tau {result['delta_predictor']['kendall_tau']:.3f}, mean abs error "
          f"{result['delta_predictor']['mean_abs_error']:.4f} | wrote {args.out}")


if __name__ == "__main__":
    main()
