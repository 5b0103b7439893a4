"""Benchmark: ranking quality of the accuracy predictors on measured archs.

Data: by default the DyNAS-T OFA MobileNetV3 logs (``../shared/data/dynast_ofa_mbv3/*.csv``
relative to the repo root, ~2,200 distinct subnets with ImageNet top-1), mapped onto the
``mobilenet``/``ofa`` space; or ``--pool CSV`` with columns ``arch`` (arch JSON) and
``accuracy`` for the space given by ``--space``/``--variant``; or ``--user-pool CSV`` of your
own space: one column per encoded dimension (the space is built from the values, categorical
unless ``--ordered``) and metric columns (``--metrics``; ``--target`` is the one predicted).
Archs measured more than once are merged (mean accuracy).

For each training size and seed, a random split (train = the first ``n`` of a seeded
permutation, test = every other arch) is fitted by each predictor; Kendall tau, Spearman,
MAPE and the share within ``--tol`` relative error are measured on the test archs and
reported as mean and std over seeds. Writes JSON atomically and prints a table.

    python -m benchmarks.bench_predictors [--sizes 50 100 200 500] [--seeds 5]
    python -m benchmarks.bench_predictors --pool pool.csv --space mobilenet --variant mnist1d
    python -m benchmarks.bench_predictors --user-pool cells.csv --target accuracy --metrics accuracy latency
"""
from __future__ import annotations

import argparse
import ast
import csv
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from predictors import PREDICTORS, kendall_tau, make_predictor, mape, spearman, within
from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config
from supernet.io.files import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
DYNAST_DIR = REPO.parent / "shared" / "data" / "dynast_ofa_mbv3"
METRICS = ("tau", "spearman", "mape", "within")


def build_space(name: str, variant: str | None):
    return get_space(name).build_space(space_config(name, variant))


def merge_duplicates(pairs: list[tuple[Arch, float]]) -> tuple[list[Arch], np.ndarray]:
    """Distinct archs in first-seen order, each with the mean of its accuracies."""
    acc: dict[Arch, list[float]] = {}
    for arch, value in pairs:
        acc.setdefault(arch, []).append(value)
    return list(acc), np.array([np.mean(v) for v in acc.values()])


def _rows(path: Path, needed: tuple[str, ...]) -> list[dict]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise SupernetError(f"{str(path)!r} lacks column {missing[0]!r}; it needs columns {list(needed)}")
        return list(reader)


def load_dynast(data_dir: Path, space) -> list[tuple[Arch, float]]:
    """(arch, top-1 %) for every row of the DyNAS-T CSVs; ``Sub-network`` is a dict literal."""
    files = sorted(Path(data_dir).glob("*.csv"))
    if not files:
        raise SupernetError(f"no CSV files in {str(data_dir)!r}; pass --data DIR or --pool CSV")
    pairs = []
    for path in files:
        for row in _rows(path, ("Sub-network", "Top-1 Acc (%)")):
            net = ast.literal_eval(row["Sub-network"])
            arch = space.make({"ks": net["ks"], "e": net["e"], "d": net["d"], "r": 224})
            pairs.append((arch, float(row["Top-1 Acc (%)"])))
    return pairs


def load_pool(path: Path, space) -> list[tuple[Arch, float]]:
    """(arch, accuracy) from a CSV with columns ``arch`` (JSON) and ``accuracy``."""
    if not Path(path).is_file():
        raise SupernetError(f"pool file {str(path)!r} does not exist")
    pairs = []
    for line, row in enumerate(_rows(path, ("arch", "accuracy")), start=2):
        try:
            value = float(row["accuracy"])
        except ValueError:
            raise SupernetError(f"{str(path)!r} line {line}: accuracy {row['accuracy']!r} is not a number") from None
        pairs.append((space.make(Arch.from_json(row["arch"])), value))
    return pairs


def split(n: int, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train = first ``n_train`` of a permutation seeded by ``seed``; test = the rest."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_train], perm[n_train:]


def score(y_true: np.ndarray, y_pred: np.ndarray, tol: float) -> dict[str, float]:
    return {"tau": kendall_tau(y_true, y_pred), "spearman": spearman(y_true, y_pred),
            "mape": mape(y_true, y_pred), "within": within(y_true, y_pred, tol)}


def run_one(name: str, space, archs: list[Arch], y: np.ndarray, n_train: int, seed: int, tol: float) -> dict:
    train, test = split(len(archs), n_train, seed)
    start = time.perf_counter()
    predictor = make_predictor(name, space, seed=seed).fit([archs[i] for i in train], y[train])
    fit_s = time.perf_counter() - start
    mean, std = predictor.predict([archs[i] for i in test])
    return {"seed": seed, "fit_s": fit_s, "mean_std": float(np.mean(std)), **score(y[test], mean, tol)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in METRICS + ("fit_s",):
        values = np.array([r[key] for r in runs])
        out[f"{key}_mean"], out[f"{key}_std"] = float(values.mean()), float(values.std())
    return out


def bench(space, archs, y, names, sizes, seeds: int, tol: float, log=print) -> list[dict]:
    """One result row per (predictor, training size) with per-seed runs and their summary."""
    rows = []
    for n_train in sizes:
        if n_train > len(archs) - 2:
            log(f"skip n_train={n_train}: only {len(archs)} archs (need 2 test archs)")
            continue
        for name in names:
            runs = [run_one(name, space, archs, y, n_train, s, tol) for s in range(seeds)]
            rows.append({"predictor": name, "n_train": n_train, "n_test": len(archs) - n_train,
                         **summarise(runs), "runs": runs})
            log(f"  {name:9s} n={n_train:4d} tau={rows[-1]['tau_mean']:.3f}")
    return rows


def table(rows: list[dict], tol: float) -> str:
    head = f"{'predictor':10s}{'n_train':>8s}{'tau':>16s}{'spearman':>16s}{'MAPE %':>16s}" \
           f"{f'within{tol:.0%}':>12s}{'fit s':>8s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        cell = lambda k, f=".3f": f"{r[k + '_mean']:{f}} ± {r[k + '_std']:{f}}"
        lines.append(f"{r['predictor']:10s}{r['n_train']:8d}{cell('tau'):>16s}{cell('spearman'):>16s}"
                     f"{cell('mape'):>16s}{r['within_mean']:12.3f}{r['fit_s_mean']:8.2f}")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + __doc__.rstrip().split("\n\n")[-1])
    p.add_argument("--data", type=Path, default=DYNAST_DIR, help="folder of DyNAS-T CSVs (default: %(default)s)")
    p.add_argument("--pool", type=Path, help="CSV with columns arch (JSON) and accuracy, instead of --data")
    p.add_argument("--user-pool", type=Path, help="CSV of encoded dimension columns and metric columns (your space)")
    p.add_argument("--metrics", nargs="+", default=["accuracy"], help="with --user-pool: the metric columns "
                   "(the rest are dimensions)")
    p.add_argument("--target", default="accuracy", help="with --user-pool: the metric to predict")
    p.add_argument("--ordered", action="store_true", help="with --user-pool: dimensions are ordered, not categorical")
    p.add_argument("--space", default="mobilenet", help="space of the archs (default: %(default)s)")
    p.add_argument("--variant", help="space variant (default: ofa for DyNAS-T, the space's default for --pool)")
    p.add_argument("--predictors", nargs="+", default=list(PREDICTORS), choices=list(PREDICTORS))
    p.add_argument("--sizes", nargs="+", type=int, default=[50, 100, 200, 500], help="training set sizes")
    p.add_argument("--seeds", type=int, default=5, help="random splits per size (seeds 0..N-1)")
    p.add_argument("--tol", type=float, default=0.10, help="relative error for the 'within' share")
    p.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP threads (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_predictors.json"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        variant = args.variant or (None if args.pool else "ofa")
        if args.user_pool:
            from benchmarks.user_pool import load_user_pool
            metrics = list(dict.fromkeys(args.metrics + [args.target]))
            space, archs_, values = load_user_pool(args.user_pool, metrics,
                                                   kind="ordered" if args.ordered else "categorical")
            pairs = list(zip(archs_, values[args.target]))
        else:
            space = build_space(args.space, variant)
            pairs = load_pool(args.pool, space) if args.pool else load_dynast(args.data, space)
        archs, y = merge_duplicates(pairs)
        print(f"{len(pairs)} rows -> {len(archs)} distinct archs (accuracy {y.min():.2f}..{y.max():.2f})")
        with threadpool_limits(args.threads):
            rows = bench(space, archs, y, args.predictors, args.sizes, args.seeds, args.tol)
    except SupernetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = str(args.user_pool or args.pool or args.data)
    result = {"source": source, "space": args.space, "variant": variant, "rows_read": len(pairs),
              "distinct_archs": len(archs), "sizes": args.sizes, "seeds": args.seeds, "tol": args.tol,
              "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    print(table(rows, args.tol))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
