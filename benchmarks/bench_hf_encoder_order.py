"""The effect of hf_encoder's importance order: the smallest subnet's held-out loss right after ordering vs
without, on small BERTs trained on a keyword task (``search_spaces.hf_encoder.testing.ordering_effect``).

    python -m benchmarks.bench_hf_encoder_order --seeds 4
writes benchmarks/results/bench_hf_encoder_order.json and .png (one bar pair per seed).
``--hidden 0.5``: the hidden channels' order instead (the smallest subnet keeps every head and MLP channel at
half the hidden size): bench_hf_encoder_order_hidden.json and .png.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from search_spaces.hf_encoder.testing import ordering_effect
from supernet.io.files import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--hidden", type=float, default=None, help="measure the hidden order at this fraction of it")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start, runs = time.time(), []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            runs.append({"seed": seed, **ordering_effect(Path(tmp) / f"m{seed}", seed, steps=args.steps,
                                                         hidden=args.hidden)})
            print(runs[-1], flush=True)
    mean = lambda key: sum(r[key] for r in runs) / len(runs)  # noqa: E731
    smallest = (f"every head and MLP channel at {args.hidden:g} of the hidden size (16 of 32 at 0.5)" if args.hidden
                else "1 of 4 heads, 16 of 64 MLP channels per layer")
    gate = "one gate per hidden channel on every LayerNorm's output" if args.hidden else "a gate per head / channel"
    result = {"what": f"held-out cross-entropy of the largest and smallest subnets ({smallest}) of a 2-layer BERT "
                      "trained on a noisy keyword task, without and with the importance order",
              "criterion": f"sum over examples of (dL/d gate)^2, {gate}, L = CE to the model's own prediction",
              "runs": runs,
              "mean": {k: mean(k) for k in runs[0] if k != "seed"},
              "ordered_better": sum(r["smallest_ordered"] < r["smallest_unordered"] for r in runs),
              "seconds": round(time.time() - start, 1), "threads": 1}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "bench_hf_encoder_order_hidden" if args.hidden else "bench_hf_encoder_order"
    atomic_write_json(RESULTS / f"{name}.json", result)
    _figure(runs, RESULTS / f"{name}.png")
    return result


def _figure(runs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2))
    xs = range(len(runs))
    ax.bar([x - 0.2 for x in xs], [r["smallest_unordered"] for r in runs], 0.4, label="smallest, stored order")
    ax.bar([x + 0.2 for x in xs], [r["smallest_ordered"] for r in runs], 0.4, label="smallest, importance order")
    ax.plot(list(xs), [r["largest_ordered"] for r in runs], "k_", markersize=20, label="largest (either)")
    ax.set_xticks(list(xs), [f"seed {r['seed']}" for r in runs])
    ax.set_ylabel("held-out cross-entropy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
