"""Benchmark: which per-round statistic measures a subnet's latency more repeatably, side by side.

For each target: ``--archs`` random subnets measured twice (two passes of ``measure_subnets``, each in
``--rounds`` interleaved rounds, the second pass after the first). Every round's calls give both
statistics at once (``statistic="p10"`` results carry ``median_ms``, the median of the round medians,
beside ``latency_ms``, the median of the round p10s), so the two are compared on the same timings:
per statistic, the relative difference of the two passes per arch (median and p90 over archs) and
Kendall tau between the passes (how well the second pass ranks like the first: a ceiling on any
predictor's tau against a measurement).

    python -m benchmarks.bench_latency_statistic --variants mnist --targets onnxruntime-cpu-int8 openvino-cpu
    python -m benchmarks.bench_latency_statistic --space hf_encoder --variants default --set hidden_size=256 \\
        --tag h256 --targets cpu onnxruntime-cpu-int8
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_latency import merged, overrides
from predictors.metrics import kendall_tau
from supernet.core.registry import get_space, space_config
from supernet.hardware.rounds import MeasureConfig, fingerprint, measure_subnets
from supernet.io.files import atomic_write_json

STATISTICS = {"median": "median_ms", "p10": "latency_ms"}


def agreement(first: np.ndarray, second: np.ndarray) -> dict:
    """How two measurements of the same archs agree: relative differences ``|a - b| / min(a, b)`` and tau."""
    diff = np.abs(first - second) / np.minimum(first, second)
    return {"median_rel_diff": float(np.median(diff)), "p90_rel_diff": float(np.percentile(diff, 90)),
            "max_rel_diff": float(diff.max()), "kendall_tau": kendall_tau(first, second),
            "level_ratio": float(np.median(second / first))}


def bench(variant: str, target: str, args) -> dict:
    space = get_space(args.space).build_space(space_config(args.space, variant, **overrides(args.set)))
    cfg = MeasureConfig(target=target, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
                        rounds=args.rounds, statistic="p10")
    rng = np.random.default_rng([3, 0])
    archs = [space.sample(rng) for _ in range(args.archs)]
    start = time.perf_counter()
    passes = [measure_subnets(space, archs, cfg, True, f"{variant}/{target} pass {k + 1}") for k in range(2)]
    values = {name: [np.array([r[key] for r in results]) for results in passes] for name, key in STATISTICS.items()}
    name = f"{args.space}/{variant}" + (f"-{args.tag}" if args.set else "")
    return {"space": name, "target": target, "archs": len(archs), "seconds": time.perf_counter() - start,
            "latency_ms_range": [float(values["median"][0].min()), float(values["median"][0].max())],
            "agreement": {stat: agreement(*pair) for stat, pair in values.items()},
            "fingerprint": fingerprint(cfg), "measure": {k: getattr(cfg, k) for k in ("threads", "warmup", "repeats", "rounds")},
            "per_arch": {stat: [pair[0].tolist(), pair[1].tolist()] for stat, pair in values.items()}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="mobilenet")
    parser.add_argument("--variants", nargs="+", default=["mnist"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a space config field")
    parser.add_argument("--tag", default="custom", help="with --set: the name the cases get (<variant>-<tag>)")
    parser.add_argument("--targets", nargs="+", default=["onnxruntime-cpu-int8"])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per round, at least")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/bench_latency_statistic.json")
    args = parser.parse_args(argv)
    cases = [bench(v, t, args) for v in args.variants for t in args.targets]
    out = Path(args.out)
    cases = merged(out, cases)  # keep the cases of other runs (one per space and target)
    atomic_write_json(out, {"machine": platform.machine(), "torch": torch.__version__, "cases": cases})
    for c in cases:
        a, b = c["agreement"]["median"], c["agreement"]["p10"]
        print(f"{c['space']:<22} {c['target']:<20} {c['latency_ms_range'][0]:6.2f}-{c['latency_ms_range'][1]:6.2f} ms | "
              f"same arch twice, median: {100 * a['median_rel_diff']:4.1f}% (p90 {100 * a['p90_rel_diff']:4.1f}%) "
              f"tau {a['kendall_tau']:.3f} | p10: {100 * b['median_rel_diff']:4.1f}% (p90 {100 * b['p90_rel_diff']:4.1f}%) "
              f"tau {b['kendall_tau']:.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
