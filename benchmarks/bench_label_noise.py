"""Benchmark: how well can any predictor rank a supernet's validation accuracies?

A predictor is scored against measured accuracies, and a measured accuracy is itself an
estimate from a finite split. This script measures that ceiling: for ``--archs`` archs
(the first rows of a ``bench_search.py`` pool, so the smallest, largest, median and then
random archs), it evaluates each arch (BN recalibrated, as the search does) on the
validation split and on the test split, and reports the Kendall tau and Pearson r
between the two. Two independent measurements of the same archs agree only that well,
so a predictor fitted to validation accuracies cannot be expected to beat it by much.

It also estimates the tau a *perfect* predictor (one that knows each arch's expected
accuracy ``t``) would score against the validation accuracies ``v = t + e_v``. With the
test accuracies ``u = t + e_u`` and independent errors, ``var(t) = cov(v, u)``, so
``corr(t, v) = sqrt(cov(v, u) / var(v))`` and, for normal values, Kendall's
``tau = (2 / pi) arcsin(corr)``. ``noise_sd_val`` is ``sqrt(var(v) - cov(v, u))`` and
``true_sd`` is ``sqrt(cov(v, u))``.

    python -m benchmarks.bench_label_noise --checkpoint runs/demo [--archs 300]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from benchmarks.bench_search import pool_archs  # noqa: E402

from predictors import kendall_tau  # noqa: E402
from supernet.core.errors import SupernetError  # noqa: E402
from supernet.evaluation.checkpoint import CheckpointEvaluator  # noqa: E402
from supernet.evaluation.subnet import evaluate_arch  # noqa: E402
from supernet.evaluation.recalibrated import checkpoint_data  # noqa: E402
from supernet.io.files import atomic_write_json  # noqa: E402


def measure(checkpoint: str, n_archs: int, seed: int) -> dict:
    evaluator = CheckpointEvaluator(checkpoint)
    data, calib = checkpoint_data(evaluator.meta, evaluator.calib_batches)
    archs = pool_archs(evaluator.space, n_archs, seed)
    rows = [evaluate_arch(evaluator.model, a, calib, data, ["val", "test"], evaluator.task, evaluator.placement)
            for a in archs]
    val = np.array([r["val_accuracy"] for r in rows])
    test = np.array([r["test_accuracy"] for r in rows])
    varied = np.unique(val).size > 1 and np.unique(test).size > 1  # else the correlations are undefined
    return {**ceiling(val, test), "checkpoint": str(evaluator.folder), "archs": len(archs), "val_examples": len(data.val),
            "test_examples": len(data.test), "kendall_tau_val_test": kendall_tau(val, test) if varied else None,
            "pearson_val_test": float(np.corrcoef(val, test)[0, 1]) if varied else None,
            "distinct_val_accuracies": int(np.unique(val).size),
            "val_accuracy_range": [float(val.min()), float(val.max())]}


def ceiling(val: np.ndarray, test: np.ndarray) -> dict:
    """True spread, validation noise and a perfect predictor's tau against ``val`` (see the module doc)."""
    cov = float(np.cov(val, test)[0, 1])
    var = float(val.var(ddof=1))
    if cov <= 0 or var <= 0:
        return {"true_sd": None, "noise_sd_val": None, "perfect_predictor_tau": None}
    corr = min(1.0, np.sqrt(cov / var))
    return {"true_sd": float(np.sqrt(cov)), "noise_sd_val": float(np.sqrt(max(0.0, var - cov))),
            "perfect_predictor_tau": float(2 / np.pi * np.arcsin(corr))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example: python -m benchmarks.bench_label_noise --checkpoint runs/demo --archs 300")
    p.add_argument("--checkpoint", required=True, help="trained supernet: run folder or checkpoint folder")
    p.add_argument("--archs", type=int, default=300, help="archs measured on both splits (default: %(default)s)")
    p.add_argument("--pool-seed", type=int, default=0, help="seed of the random archs, as bench_search.py")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_label_noise.json")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        result = measure(args.checkpoint, args.archs, args.pool_seed)
    except SupernetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    tau, r = result["kendall_tau_val_test"], result["pearson_val_test"]
    print(f"{result['archs']} archs, val {result['val_examples']} / test {result['test_examples']} examples: "
          f"Kendall tau(val, test) = {tau if tau is None else round(tau, 3)}, Pearson r = {r if r is None else round(r, 3)}, "
          f"{result['distinct_val_accuracies']} distinct val accuracies")
    if result["perfect_predictor_tau"] is not None:
        print(f"spread of true accuracies (sd) {result['true_sd']:.4f}, validation noise (sd) {result['noise_sd_val']:.4f}: "
              f"a perfect predictor would reach Kendall tau about {result['perfect_predictor_tau']:.3f} on validation")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
