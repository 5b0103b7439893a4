"""Benchmark: CPU training step in the channels-last layout (``supernet.layers.layout``) vs the plain
channels-first one, side by side.

For each space and arch (smallest, a middle one, largest) it times, interleaved, one
training step (forward, backward, SGD step) of the extracted static subnet (what
stand-alone training and ``supernet finetune`` run) and of the elastic supernet running
that arch (what a sandwich step runs four times), once in each layout. The plain layout
is the same code with ``training_layout`` replaced by the identity. Reports the median
seconds per step and the speed-up plain / layout, and checks that both layouts compute
the same logits and gradients: each layout's float32 error against the plain layout in float64.

    python -m benchmarks.bench_layout                        # 1 thread, MNIST-1D, MNIST, OFA at 128 px
    python -m benchmarks.bench_layout --threads 2 --repeats 20 --cases mnist1d
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from supernet.core.registry import build_supernet, space_config  # noqa: E402
from supernet.io.files import atomic_write_json  # noqa: E402
from supernet.layers import layout  # noqa: E402

CASES = {"mnist1d": (40, 128), "mnist": (28, 64), "ofa": (128, 16)}  # variant -> (resolution, batch)
LAYOUT, PLAIN = layout.training_layout, (lambda x: x)


def step_fn(module, call, x):
    """One SGD step of ``call(x)`` (loss: mean square of the logits) on ``module``'s parameters."""
    opt = torch.optim.SGD(module.parameters(), lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        call(x).square().mean().backward()
        opt.step()
    return step


def timed(steps: dict, repeats: int) -> dict:
    """Interleaved wall times per layout, after one warm-up step each: ``layout -> median seconds``."""
    times = {name: [] for name in steps}
    for r in range(repeats + 1):
        for name, (fn, which) in steps.items():
            layout.training_layout = which
            start = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - start)
    layout.training_layout = LAYOUT
    return {name: statistics.median(t) for name, t in times.items()}


def agreement(net, x) -> dict:
    """How far each layout's logits and gradients are from the plain layout's in float64 (same
    dropout draws): max |logit difference|, and ``||g - g_64|| / ||g_64||`` over all parameters."""
    def run(which, model, inp):
        layout.training_layout = which
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        y = model(inp)
        y.square().mean().backward()
        return y.detach().double(), torch.cat([p.grad.flatten().double() for p in model.parameters()
                                               if p.grad is not None])
    fast, plain = run(LAYOUT, net, x), run(PLAIN, net, x)
    exact = run(PLAIN, copy.deepcopy(net).double(), x.double())
    layout.training_layout = LAYOUT
    out = {}
    for name, (y, g) in (("layout", fast), ("plain", plain)):
        out[f"{name}_max_logit_diff_vs_fp64"] = float((y - exact[0]).abs().max())
        out[f"{name}_grad_rel_diff_vs_fp64"] = float((g - exact[1]).norm() / exact[1].norm())
    return out


def bench_case(variant: str, repeats: int) -> list[dict]:
    resolution, batch = CASES[variant]
    torch.manual_seed(0)
    supernet = build_supernet("mobilenet", space_config("mobilenet", variant)).train()
    space = supernet.space
    mid = space.sample(np.random.default_rng(0))
    rows = []
    for name, arch in (("smallest", space.smallest()), ("middle", mid), ("largest", space.largest())):
        x = torch.randn(batch, supernet.config.in_channels, *[arch["r"]] * supernet.config.ndim)
        static = supernet.extract(arch).train()
        elastic = lambda inp, arch=arch: supernet(inp, arch)
        t = timed({"static_layout": (step_fn(static, static, x), LAYOUT),
                   "static_plain": (step_fn(static, static, x), PLAIN),
                   "elastic_layout": (step_fn(supernet, elastic, x), LAYOUT),
                   "elastic_plain": (step_fn(supernet, elastic, x), PLAIN)}, repeats)
        rows.append({"variant": variant, "arch": name, "resolution": arch["r"], "batch": batch,
                     "flops": supernet.flops(arch), **{f"{k}_s": round(v, 5) for k, v in t.items()},
                     "static_speedup": round(t["static_plain"] / t["static_layout"], 3),
                     "elastic_speedup": round(t["elastic_plain"] / t["elastic_layout"], 3),
                     **agreement(static, x)})
        print(f"{variant:<8} {name:<9} static {t['static_plain']:.4f} -> {t['static_layout']:.4f} s "
              f"({rows[-1]['static_speedup']:.2f}x)  elastic {t['elastic_plain']:.4f} -> "
              f"{t['elastic_layout']:.4f} s ({rows[-1]['elastic_speedup']:.2f}x)  "
              f"grad error vs fp64: layout {rows[-1]['layout_grad_rel_diff_vs_fp64']:.1e}, plain {rows[-1]['plain_grad_rel_diff_vs_fp64']:.1e}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per layout (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_layout.json"))
    args = p.parse_args(argv)
    cases = args.cases.split(",")
    if not set(cases) <= set(CASES) or args.repeats < 1 or args.threads < 1:
        p.error(f"--cases from {list(CASES)}; --repeats and --threads >= 1")
    torch.set_num_threads(args.threads)
    rows = [row for case in cases for row in bench_case(case, args.repeats)]
    report = {"threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "rows": rows,
              "median_static_speedup": statistics.median(r["static_speedup"] for r in rows),
              "median_elastic_speedup": statistics.median(r["elastic_speedup"] for r in rows)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    print(f"median speed-up of a training step, layout vs plain: static {report['median_static_speedup']:.2f}x, "
          f"elastic {report['median_elastic_speedup']:.2f}x -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
