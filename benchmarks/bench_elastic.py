"""Benchmark: elastic supernet forward+backward vs the exported static subnet.

For each space (default 2-D OFA space at 128 px, batch 32; MNIST-1D space at 40
samples, batch 128) and each arch (largest, smallest, 3 random), times
``supernet(x, arch)`` and ``supernet.extract(arch)`` forward+backward in rounds: each round
times both, in alternating order (so neither always runs first), and gives the ratio
elastic / static of two neighbouring measurements; the figure is the median of those ratios
over at least ``--repeats`` rounds and ``--min-seconds`` of timing per arch (a loaded
machine slows both sides of a round alike), with its interquartile range. Target: <= 1.10.
Also times one full sandwich step (4 archs forward+backward, optimizer step). Each space runs in
a fresh process (as a training run would), so one case's memory (the 2-D space's gigabytes of
activations) does not shape the next one's allocations. Writes JSON.

    python -m benchmarks.bench_elastic [--repeats 20] [--min-seconds 3] [--threads 2] [--out benchmarks/results/bench_elastic.json]
"""
from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from supernet.core.registry import build_supernet, space_config
from supernet.core.task import make_task
from supernet.io.files import atomic_write_json
from supernet.training.train_config import TrainConfig, with_space_defaults
from supernet.training.trainer import Trainer

CASES = [("ofa", 128, 32), ("mnist1d", 40, 128)]


def fwd_bwd(fn, x):
    fn(x).float().square().mean().backward()


def time_pair(supernet, arch, x, repeats: int, min_seconds: float) -> tuple[list[float], list[float]]:
    """Timings (seconds) of elastic and static forward+backward, one of each per round, the order
    alternating between rounds; at least ``repeats`` rounds and ``min_seconds`` of timed work."""
    static = supernet.extract(arch).train()
    elastic = lambda inp: supernet(inp, arch)
    for _ in range(3):  # warm-up
        fwd_bwd(elastic, x)
        fwd_bwd(static, x)
    t_elastic, t_static = [], []
    while len(t_elastic) < repeats or sum(t_elastic) + sum(t_static) < min_seconds:
        pair = ((elastic, t_elastic), (static, t_static))
        for fn, sink in pair if len(t_elastic) % 2 == 0 else pair[::-1]:
            supernet.zero_grad(set_to_none=True)
            static.zero_grad(set_to_none=True)
            start = time.perf_counter()
            fwd_bwd(fn, x)
            sink.append(time.perf_counter() - start)
    return t_elastic, t_static


def time_sandwich(supernet, x, y, repeats: int) -> float:
    """Median wall time of one real training step (:meth:`Trainer.step`: 4 archs, KD, clip, optimizer)."""
    cfg = with_space_defaults(TrainConfig(num_random=2, device="cpu"))
    trainer = Trainer(supernet, make_task("classification", label_smoothing=cfg.label_smoothing), cfg,
                      cfg.placement(), total_steps=repeats + 1)
    times = []
    for step in range(repeats + 1):
        start = time.perf_counter()
        trainer.step(x, y, step)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench_case(variant: str, resolution: int, batch: int, repeats: int, min_seconds: float, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = space_config("mobilenet", variant, num_classes=10)
    supernet = build_supernet("mobilenet", cfg).train()
    space = supernet.space
    rng = np.random.default_rng(0)
    archs = {"largest": space.largest(), "smallest": space.smallest()}
    archs.update({f"random{i}": space.sample(rng) for i in range(3)})
    rows = []
    for name, arch in archs.items():
        if variant == "ofa":
            arch = arch.replace(r=resolution)  # time every arch at the stated resolution
        x = torch.randn((batch, cfg.in_channels) + (arch["r"],) * cfg.ndim)
        te, ts = time_pair(supernet, arch, x, repeats, min_seconds)
        ratios = [a / b for a, b in zip(te, ts)]
        q1, ratio, q3 = statistics.quantiles(ratios, n=4)
        rows.append({"arch": name, "resolution": arch["r"], "elastic_ms": 1e3 * statistics.median(te),
                     "static_ms": 1e3 * statistics.median(ts), "ratio": ratio, "ratio_iqr": [q1, q3],
                     "rounds": len(ratios), "mflops": supernet.flops(arch) / 1e6})
    x = torch.randn((batch, cfg.in_channels) + (resolution,) * cfg.ndim)
    y = torch.randint(0, 10, (batch,))
    sandwich_ms = 1e3 * time_sandwich(supernet, x, y, max(3, repeats // 2))
    return {"space": f"mobilenet/{variant}", "batch": batch, "input": resolution, "archs": rows,
            "max_ratio": max(r["ratio"] for r in rows), "sandwich_step_ms": sandwich_ms}


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a new (spawned) Python process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="at least this many rounds per arch")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="and at least this much timed work per arch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/bench_elastic.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"torch": torch.__version__, "threads": args.threads, "machine": platform.processor() or platform.machine(),
               "capability": torch.backends.cpu.get_cpu_capability(), "target_max_ratio": 1.10,
               "cases": [in_fresh_process(bench_case, *case, args.repeats, args.min_seconds, args.threads)
                         for case in CASES]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    for case in results["cases"]:
        print(f"{case['space']}  batch {case['batch']}  sandwich step {case['sandwich_step_ms']:.1f} ms")
        for r in case["archs"]:
            print(f"  {r['arch']:<9} r={r['resolution']:<4} {r['mflops']:8.1f} MMACs  elastic {r['elastic_ms']:8.2f} ms"
                  f"  static {r['static_ms']:8.2f} ms  ratio {r['ratio']:.3f} [{r['ratio_iqr'][0]:.3f}, {r['ratio_iqr'][1]:.3f}]"
                  f" ({r['rounds']} rounds)")
        print(f"  max ratio {case['max_ratio']:.3f} (target <= 1.10)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
