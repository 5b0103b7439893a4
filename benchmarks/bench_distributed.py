"""Benchmark: scale out on Ray, on this machine (a local Ray instance).

Search: the same predictor-guided search (same seed, same checkpoint) with 1 and with N Ray
evaluation actors of one thread each. Reported: the wall time of the whole search, and of its
evaluation phase (time spent waiting on ``evaluate_many``; predictor fitting and NSGA-II run in
the driver either way), with their ratios; the runs must return the same evaluations. For
comparison, the time per trial of a Ray Tune run of empty trials.

Training: the same run (global batch ``--batch-size``) here without Ray (one thread) and on 1 and
N Ray Train workers of one thread each; throughput in optimizer steps per second, read from the
``time`` of each step in ``log.jsonl`` (1 / median step interval after ``--skip`` warm-up steps).

    python -m benchmarks.bench_distributed                      # 2 workers; writes benchmarks/results/bench_distributed.json
    python -m benchmarks.bench_distributed --workers 4 --evaluations 80 --train-steps 120
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from supernet.io.files import atomic_write_json  # noqa: E402


class Timed:
    """Wraps an evaluator; ``seconds`` adds up the time the search waits on it."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def evaluate_many(self, archs):
        return list(self.evaluate_iter(archs))

    def evaluate_iter(self, archs):
        results = self.inner.evaluate_iter(archs)
        while True:
            start = time.perf_counter()
            try:
                result = next(results)
            except StopIteration:
                self.seconds += time.perf_counter() - start
                return
            self.seconds += time.perf_counter() - start
            yield result


def bench_search(checkpoint: Path, workers: int, args) -> dict:
    """Wall and evaluation-phase seconds of one search with ``workers`` actors (actor start-up excluded)."""
    from supernet import run_search
    from supernet.core.placement import CPU
    from supernet.distributed.evaluate import CheckpointMaker, RayEvaluator
    from supernet.evaluation.checkpoint import CheckpointEvaluator
    from supernet.nas.search_config import SearchConfig
    local = CheckpointEvaluator(checkpoint, args.calib_batches)
    pool = RayEvaluator(CheckpointMaker(local.folder, args.calib_batches, CPU), workers)
    pool.evaluate_many([local.space.smallest()])  # start the actors: load the supernet and data once
    timed = Timed(pool)
    config = SearchConfig(objectives=("accuracy", "flops"), evaluations=args.evaluations, per_round=args.per_round,
                          predictor="ridge", generations=20, population=30, seed=0)
    start = time.perf_counter()
    try:
        result = run_search(local.space, timed, config, costs=local.costs, tensorboard=False)
    finally:
        pool.close()
    wall = time.perf_counter() - start
    return {"workers": workers, "wall_s": round(wall, 2), "evaluation_s": round(timed.seconds, 2),
            "evaluations": len(result.evaluations), "rows": result.evaluations}


def steps_per_second(run: Path, skip: int) -> float:
    """1 / the median time between consecutive steps after ``skip`` (epoch evaluations, which only rank 0
    runs, and checkpoints are left out that way)."""
    import numpy as np
    rows = [json.loads(line) for line in open(run / "log.jsonl")]
    times = [t for _, t in sorted((r["step"], r["time"]) for r in rows if "loss/largest" in r)]
    return float(1 / np.median(np.diff(times[skip:])))


def bench_train(cfg_args: dict, workers: int | None, folder: Path, skip: int) -> dict:
    from supernet.api import train
    from supernet.training.train_config import ScaleConfig, TrainConfig
    cfg = TrainConfig(**cfg_args)
    start = time.perf_counter()
    run = train(cfg, folder / f"train-{workers or 'local'}", overwrite=True,
                scale=ScaleConfig(workers) if workers else None)
    return {"workers": workers or "local", "steps_per_s": round(steps_per_second(run, skip), 3),
            "wall_s": round(time.perf_counter() - start, 2)}


def tune_overhead(trials: int, workers: int, folder: Path) -> float:
    """Seconds per trial of a Ray Tune run of ``trials`` trials that do nothing (``workers`` at a time):
    the floor a Tune trial would add to each real evaluation."""
    from ray import tune

    def nothing(config):
        return {"accuracy": 0.0}
    tuner = tune.Tuner(tune.with_resources(nothing, {"cpu": 1}), param_space={"i": tune.grid_search(list(range(trials)))},
                       tune_config=tune.TuneConfig(max_concurrent_trials=workers),
                       run_config=tune.RunConfig(storage_path=str(folder / "tune"), verbose=0))
    start = time.perf_counter()
    tuner.fit()
    return (time.perf_counter() - start) / trials


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + __doc__.rstrip().split("\n\n")[-1])
    p.add_argument("--workers", type=int, default=2, help="Ray workers / actors compared with 1 (default: %(default)s)")
    p.add_argument("--evaluations", type=int, default=48, help="real evaluations per search (default: %(default)s)")
    p.add_argument("--per-round", type=int, default=8, help="evaluations per search round (default: %(default)s)")
    p.add_argument("--calib-batches", type=int, default=4, help="BN calibration batches of 256 (default: %(default)s)")
    p.add_argument("--train-steps", type=int, default=60, help="optimizer steps per training run (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=256, help="global batch of the training runs (default: %(default)s)")
    p.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the throughput (default: %(default)s)")
    p.add_argument("--tune-trials", type=int, default=16, help="empty Ray Tune trials timed for comparison; 0 = "
                   "skip (default: %(default)s)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_distributed.json")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ray
    import torch
    torch.set_num_threads(1)
    ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    train_args = dict(data="mnist1d", samples=8000, steps=args.train_steps, batch_size=args.batch_size,
                      warmup_steps=5, checkpoint_every=0, threads=1, tensorboard=False, progress=False, seed=0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            train_runs = [bench_train(train_args, w, folder, args.skip) for w in (None, 1, args.workers)]
            checkpoint = folder / "train-local"
            searches = [bench_search(checkpoint, w, args) for w in (1, args.workers)]
            tune_s = tune_overhead(args.tune_trials, args.workers, folder) if args.tune_trials else None
    finally:
        ray.shutdown()
    one, many = searches
    same = [r["arch"] for r in one["rows"]] == [r["arch"] for r in many["rows"]] and one["rows"] == many["rows"]
    result = {
        "setup": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "search": {"runs": [{k: v for k, v in r.items() if k != "rows"} for r in searches],
                   "evaluation_speedup": round(one["evaluation_s"] / many["evaluation_s"], 3),
                   "wall_speedup": round(one["wall_s"] / many["wall_s"], 3), "same_results": same,
                   "seconds_per_evaluation_1_worker": round(one["evaluation_s"] / one["evaluations"], 4),
                   "tune_seconds_per_empty_trial": None if tune_s is None else round(tune_s, 4)},
        "train": {"runs": train_runs,
                  "speedup_vs_1_worker": round(train_runs[2]["steps_per_s"] / train_runs[1]["steps_per_s"], 3),
                  "speedup_vs_local": round(train_runs[2]["steps_per_s"] / train_runs[0]["steps_per_s"], 3)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    s, t = result["search"], result["train"]
    print(f"search ({args.evaluations} evaluations): evaluation phase {one['evaluation_s']:.1f} s with 1 worker, "
          f"{many['evaluation_s']:.1f} s with {args.workers}: {s['evaluation_speedup']:.2f}x; whole search "
          f"{s['wall_speedup']:.2f}x; same results: {same}")
    if tune_s is not None:
        print(f"an evaluation takes {s['seconds_per_evaluation_1_worker']:.3f} s on one actor; an empty Ray Tune "
              f"trial {tune_s:.3f} s")
    print("train (global batch {}): ".format(args.batch_size) + ", ".join(
        f"{r['workers']}: {r['steps_per_s']:.2f} step/s" for r in train_runs)
        + f"; {args.workers} vs 1 worker {t['speedup_vs_1_worker']:.2f}x")
    print(f"wrote {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
