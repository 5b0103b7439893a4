"""Benchmark: latency tables + learned correction vs measured latency of whole subnets.

For each space variant, target and batch size: build the unit table (with its kernel counts and
reference arch), measure ``--fit`` random subnets to fit the correction and ``--test`` other
random subnets (default 200; the targets are judged over at least 30 held-out archs) to score it.
Reports MAPE, share within +-10%, Kendall tau for table-only and table+correction, and
repeatability (the same archs measured twice in one run, relative difference of medians).
Targets: table+correction MAPE <= 5%, >= 95% within +-10%, tau >= 0.9; repeat <= 5%.
Cases already in ``--out`` that this run does not measure (other variants / targets / batches) are kept.

``--device cpu`` (default): targets ``cpu`` and ``onnxruntime-cpu``, variants ``mnist1d`` and ``ofa``.
``--device cuda``: the GPU targets as deployed, ``cuda`` (eager), ``cuda-graph`` and ``ort-cuda``
(``--targets ... ort-tensorrt`` adds TensorRT: its engine build per unit takes seconds, so a table
takes tens of minutes), variant ``ofa``, batches 1 and 64; on a machine without a GPU it stops
with a one-line error, and a target whose package is missing is recorded as skipped with the reason.

    python -m benchmarks.bench_latency [--test 200] [--fit 60] [--threads 1] [--batches 1] [--rounds 3]
    python -m benchmarks.bench_latency --device cuda --out benchmarks/results/bench_latency_gpu_h200.json
    python -m benchmarks.bench_latency --device cuda --test 40 --fit 40 --unit-rounds 3   # ~10 min on one GPU
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from predictors.latency import TableLatencyPredictor
from predictors.metrics import kendall_tau, mape, within
from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config
from supernet.hardware.rounds import STATISTICS, MeasureConfig, fingerprint, latency_ms, measure_subnets, repeatability
from supernet.hardware.latency_table import LatencyTable, build_table
from supernet.hardware.timers import target_problem
from supernet.io.files import atomic_write_json

DEVICES = {"cpu": (["cpu", "onnxruntime-cpu"], ["mnist1d", "ofa"], [1]),
           "cuda": (["cuda", "cuda-graph", "ort-cuda"], ["ofa"], [1, 64])}


def scores(measured: np.ndarray, predicted: np.ndarray) -> dict:
    return {"mape": mape(measured, predicted), "within_10": within(measured, predicted, 0.10),
            "kendall_tau": kendall_tau(measured, predicted)}


def overrides(pairs: list[str]) -> dict:
    """``["hidden_size=256", "seq_len=64"]`` -> ``{"hidden_size": 256, "seq_len": 64}`` (values read as JSON, else text)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SupernetError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def bench(variant: str, target: str, batch: int, args, out_dir: Path) -> dict:
    space = get_space(args.space).build_space(space_config(args.space, variant, **overrides(args.set)))
    variant = f"{variant}-{args.tag}" if args.set else variant
    cfg = MeasureConfig(target=target, threads=args.threads, batch=batch, warmup=args.warmup,
                        repeats=args.repeats, rounds=args.rounds, unit_rounds=args.unit_rounds,
                        statistic=args.statistic)
    start = time.perf_counter()
    table = LatencyTable(args.space, space.config.to_dict(), cfg)
    prefix = "" if args.space == "mobilenet" else args.space + "-"
    suffix = "" if args.statistic == "median" else f"-{args.statistic}"
    build_table(table, space, out_dir / f"{prefix}{variant}-{target}-t{args.threads}-b{batch}{suffix}.json",
                n_archs=args.fit, seed=1)
    built = time.perf_counter() - start
    rng = np.random.default_rng([2, 0])
    test = [space.sample(rng) for _ in range(args.test)]
    measured = np.array([latency_ms(m) for m in measure_subnets(space, test, cfg, True, f"{variant}/{target}")])
    again = measure_subnets(space, test[:args.repeat_archs], cfg)
    first = [{"latency_ms": m} for m in measured[:args.repeat_archs]]
    diffs = [repeatability(a, b) for a, b in zip(first, again)]
    fit_archs, fit_ms = table.measured(space)
    model = TableLatencyPredictor(space, units=table.units, kernels=table.kernels).fit(fit_archs, fit_ms)
    table_ms, predicted = model.table_only(test), model.predict(test)[0]
    return {"space": f"{args.space}/{variant}", "target": target, "units": len(table.units), "fit_archs": len(fit_ms),
            "test_archs": len(test), "build_seconds": built, "latency_ms_range": [float(measured.min()), float(measured.max())],
            "table_only": scores(measured, table_ms), "table_plus_correction": scores(measured, predicted),
            "repeatability": {"archs": len(diffs), "median_rel_diff": float(np.median(diffs)),
                              "max_rel_diff": float(np.max(diffs))},
            "reference": {k: table.reference.get(k) for k in ("latency_ms", "median_ms", "spread_ms", "round_ms")},
            "fingerprint": fingerprint(cfg), "measure": asdict(cfg),
            "per_arch": {"measured_ms": measured.tolist(), "table_ms": table_ms.tolist(),
                         "predicted_ms": predicted.tolist(), "kernels": model.kernel_counts(test).tolist()}}


def merged(out: Path, cases: list[dict]) -> list[dict]:
    """``cases`` plus the cases of an existing ``out`` file that this run did not measure again."""
    if not out.exists():
        return cases
    key = lambda c: (c["space"], c["target"], c.get("measure", {}).get("batch", 1),  # noqa: E731
                     c.get("measure", {}).get("statistic", "median"))
    new = {key(c) for c in cases}
    old = [c for c in json.loads(out.read_text()).get("cases", []) if key(c) not in new]
    return old + cases


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                        help="which targets, variants and batches by default (default: %(default)s)")
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--fit", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: see README)")
    parser.add_argument("--batches", type=int, nargs="+", help="inputs per timed call (default: 1 on cpu, "
                        "1 and 64 on cuda)")
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)  # the former single-batch option
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per round, at least")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median over rounds)")
    parser.add_argument("--unit-rounds", type=int, default=7, help="interleaved rounds for the table's units")
    parser.add_argument("--statistic", choices=STATISTICS, default=MeasureConfig.statistic,
                        help="what each round keeps: its median call or its 10th-percentile call")
    parser.add_argument("--repeat-archs", type=int, default=20)
    parser.add_argument("--space", default="mobilenet", help="registered space (e.g. hf_encoder with --variants default)")
    parser.add_argument("--variants", nargs="+")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a space config field for every variant (repeat it), e.g. --set hidden_size=256")
    parser.add_argument("--tag", default="custom", help="with --set: the name the cases and tables get "
                        "(<variant>-<tag>)")
    parser.add_argument("--targets", nargs="+")
    parser.add_argument("--out", default="benchmarks/results/bench_latency.json")
    args = parser.parse_args(argv)
    targets, variants, batches = DEVICES[args.device]
    targets, variants = args.targets or targets, args.variants or variants
    batches = args.batches or ([args.batch] if args.batch else batches)
    if args.device == "cuda" and target_problem("cuda"):
        print(f"error: --device cuda: {target_problem('cuda')}", file=sys.stderr)
        raise SystemExit(2)
    out_dir = Path(args.out).parent / "latency_tables"
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped = {t: target_problem(t) for t in targets if target_problem(t)}
    try:
        cases = [bench(v, t, b, args, out_dir) for v in variants for t in targets if t not in skipped for b in batches]
    except SupernetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    cases = merged(Path(args.out), cases)
    atomic_write_json(args.out, {"machine": platform.machine(), "torch": torch.__version__, "cases": cases,
                                 "skipped_targets": skipped,
                                 "targets": {"mape": 5.0, "within_10": 0.95, "kendall_tau": 0.9, "repeat": 0.05,
                                             "held_out_archs": 30}})
    for target, why in skipped.items():
        print(f"skipped {target}: {why}")
    for c in cases:
        t, tc, r = c["table_only"], c["table_plus_correction"], c["repeatability"]
        met = tc["mape"] <= 5 and tc["within_10"] >= 0.95 and tc["kendall_tau"] >= 0.9 and c["test_archs"] >= 30
        print(f"{c['space']:<18} {c['target']:<16} b{c['measure']['batch']:<3} "
              f"{c['latency_ms_range'][0]:6.2f}-{c['latency_ms_range'][1]:6.2f} ms | "
              f"table MAPE {t['mape']:5.1f}% w10 {t['within_10']:.2f} tau {t['kendall_tau']:.3f} | "
              f"+corr MAPE {tc['mape']:5.1f}% w10 {tc['within_10']:.2f} tau {tc['kendall_tau']:.3f} | "
              f"repeat median {100 * r['median_rel_diff']:.1f}% max {100 * r['max_rel_diff']:.1f}% | "
              f"{'targets met' if met else 'targets missed'}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
