"""Benchmark: search and predictors on a categorical cell space of our own making.

The space: 6 positions (edges of a cell), each one of 5 unordered operations (``none``,
``skip``, ``conv1x1``, ``conv3x3``, ``pool``), declared ``categorical``: 15,625 archs,
every one enumerated, so the true Pareto front is known. A *task* (one per ``--tasks``
seed, none tuned by hand) fixes, from ``default_rng([1000 + task])``:

    accuracy(a) = 0.75 + 0.04 * s(a) / sd(s)          s(a) = sum_i u_i[a_i] + sum_{i<j} w_ij[a_i, a_j] + e(a)
    latency(a)  = 0.2 + sum_i p_i c[a_i] + 0.3 sum_i c[a_i] c[a_{i+1}]   (ms)

with ``u_i ~ N(0, 1)`` per position and op, ``w_ij ~ N(0, 0.6)`` for every pair of positions
and pair of ops (interactions), ``e(a) ~ N(0, 0.3)`` a fixed draw per arch (noise), op costs
``c`` drawn around (0, 0.05, 0.3, 0.9, 0.2) and position factors ``p_i ~ U(0.7, 1.3)``.
Accuracy up, latency down; both are returned by the evaluator, so the search predicts both.

Two measurements (``benchmarks/results/bench_categorical.json``):

1. Predictors: Kendall tau of accuracy on held-out archs (train = ``--sizes`` archs, test =
   2,000 others, ``--splits`` random splits per task): every single predictor and ``auto``.
   Target: ``auto`` within 0.02 of the best single predictor at every size.
2. Search: hypervolume (reference from the true front, point at 1.1 in normalised units)
   relative to the true front's. Predictor-guided (``SearchConfig.predictor``, default
   ``auto``) at each of ``--budgets`` vs plain NSGA-II and random search read at every
   prefix of one ``--reference-evals`` run. Target: guided at <= 100 evaluations reaches
   plain NSGA-II's hypervolume at 300 (means over tasks x seeds).

    python -m benchmarks.bench_categorical                       # 3 tasks x 2 seeds, ~10 min on 2 cores
    python -m benchmarks.bench_categorical --tasks 1 --seeds 1 --budgets 40 --reference-evals 80 --sizes 50  # smoke
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]

from predictors import PREDICTORS, kendall_tau, make_predictor  # noqa: E402
from supernet import run_search  # noqa: E402
from supernet.core.arch import Arch, Dimension
from supernet.core.space import SearchSpace  # noqa: E402
from supernet.io.files import atomic_write_json  # noqa: E402
from supernet.nas.search_config import SearchConfig
from supernet.nas.pareto import Reference, pareto_mask  # noqa: E402

OPS = ("none", "skip", "conv1x1", "conv3x3", "pool")
POSITIONS = 6
BASE_COST = np.array([0.0, 0.05, 0.3, 0.9, 0.2])


def cell_space() -> SearchSpace:
    space = SearchSpace([Dimension("op", OPS, POSITIONS, kind="categorical")])
    space.name = "cell"
    return space


class CellTask:
    """Accuracy and latency of every arch of :func:`cell_space` for one task seed (see the module doc)."""

    def __init__(self, task: int):
        rng = np.random.default_rng([1000 + task])
        k, n = len(OPS), POSITIONS
        self.codes = np.array(list(itertools.product(range(k), repeat=n)))  # (15625, 6)
        unary = rng.normal(0, 1, size=(n, k))
        pair = rng.normal(0, 0.6, size=(n, n, k, k))
        s = unary[np.arange(n), self.codes].sum(axis=1)
        for i, j in itertools.combinations(range(n), 2):
            s += pair[i, j, self.codes[:, i], self.codes[:, j]]
        s += rng.normal(0, 0.3, size=len(self.codes))
        self.accuracy = 0.75 + 0.04 * (s - s.mean()) / s.std()
        cost = BASE_COST * rng.uniform(0.8, 1.25, size=k)
        factor = rng.uniform(0.7, 1.3, size=n)
        c = cost[self.codes]  # (N, 6)
        self.latency = 0.2 + (c * factor).sum(axis=1) + 0.3 * (c[:, :-1] * c[:, 1:]).sum(axis=1)
        self.index = {tuple(row): i for i, row in enumerate(self.codes.tolist())}

    def row(self, arch: Arch) -> int:
        return self.index[tuple(OPS.index(o) for o in arch["op"])]

    def arch(self, i: int) -> Arch:
        return Arch({"op": [OPS[c] for c in self.codes[i]]})

    def __call__(self, arch: Arch) -> dict:
        i = self.row(arch)
        return {"accuracy": float(self.accuracy[i]), "latency": float(self.latency[i])}

    def objectives(self) -> np.ndarray:
        return np.column_stack([-self.accuracy, self.latency])


# -- 1. predictors ---------------------------------------------------------------------
def predictor_taus(task: CellTask, space, names, sizes, splits: int, log=print) -> dict:
    """``{size: {name: [tau per split]}}`` of accuracy on 2,000 held-out archs."""
    out = {}
    for n in sizes:
        out[str(n)] = {name: [] for name in names}
        for split in range(splits):
            perm = np.random.default_rng([7, split]).permutation(len(task.codes))
            train, test = perm[:n], perm[n:n + 2000]
            archs = [task.arch(i) for i in train]
            tests = [task.arch(i) for i in test]
            for name in names:
                p = make_predictor(name, space, seed=split).fit(archs, task.accuracy[train])
                out[str(n)][name].append(kendall_tau(task.accuracy[test], p.predict(tests)[0]))
        log(f"  n={n:4d} " + "  ".join(f"{k} {np.mean(v):.3f}" for k, v in out[str(n)].items()))
    return out


# -- 2. search ---------------------------------------------------------------------------
def curve(reference: Reference, rows: list[dict]) -> list[float]:
    """Hypervolume of the ok evaluations among the first ``n``, for n = 1..len(rows)."""
    F = np.array([[-r["accuracy"], r["latency"]] for r in rows], dtype=float)
    return [reference.hypervolume(F[:n][pareto_mask(F[:n])]) for n in range(1, len(rows) + 1)]


def one_search(task: CellTask, space, method: str, evaluations: int, seed: int, args) -> list[dict]:
    config = SearchConfig(objectives=("accuracy", "latency"), evaluations=evaluations, strategy=method, seed=seed,
                          predictor=args.predictor, initial=None if method == "predictor" else args.population,
                          population=args.population, generations=args.generations,
                          cheap=False)  # a table standing in for real evaluations (supernet.nas.pace)
    return run_search(space, task, config, tensorboard=False).evaluations


def search_bench(task: CellTask, space, args, log=print) -> dict:
    F = task.objectives()
    front = F[pareto_mask(F)]
    reference = Reference.from_points(front)
    true_hv = reference.hypervolume(front)
    out = {"front_size": len(front), "predictor": {}, "nsga2": {}, "random": {}}
    for s in range(args.seeds):
        start = time.perf_counter()
        for method in ("nsga2", "random"):
            c = np.array(curve(reference, one_search(task, space, method, args.reference_evals, s, args))) / true_hv
            out[method][str(s)] = c.tolist()
        for b in args.budgets:
            c = curve(reference, one_search(task, space, "predictor", b, s, args))
            out["predictor"].setdefault(str(b), []).append(c[-1] / true_hv)
        log(f"  seed {s}: " + "  ".join(f"guided@{b} {out['predictor'][str(b)][-1]:.4f}" for b in args.budgets)
            + f"  nsga2@{args.reference_evals} {out['nsga2'][str(s)][-1]:.4f}  ({time.perf_counter() - start:.0f}s)")
    return out


# -- summary ---------------------------------------------------------------------------
def summarise(tasks: dict, args) -> dict:
    pred = {}
    for n in map(str, args.sizes):
        means = {name: float(np.mean([t["predictors"][n][name] for t in tasks.values()])) for name in args.predictors}
        singles = {k: v for k, v in means.items() if k != "auto"}
        best = max(singles, key=singles.get)
        per_task = [float(np.mean(t["predictors"][n]["auto"]) - max(np.mean(v) for k, v in t["predictors"][n].items()
                                                                       if k != "auto")) for t in tasks.values()]
        pred[n] = {"tau": means, "best_single": best, "auto_minus_best": means["auto"] - singles[best],
                   "auto_minus_best_per_task": per_task}
    at = lambda curves, e: [c[min(e, len(c)) - 1] for t in tasks.values() for c in t["search"][curves].values()]
    search = {"nsga2": {str(e): float(np.mean(at("nsga2", e))) for e in sorted({*args.budgets, 300})},
              "random": {str(e): float(np.mean(at("random", e))) for e in sorted({*args.budgets, 300})},
              "predictor": {str(b): float(np.mean([v for t in tasks.values() for v in t["search"]["predictor"][str(b)]]))
                            for b in args.budgets}}
    goal = search["nsga2"].get("300")
    guided = [b for b in args.budgets if b <= 100 and search["predictor"][str(b)] >= goal - 1e-12]
    return {"predictors": pred, "search": search,
            "targets": {"auto_within_0.02_of_best": all(p["auto_minus_best"] >= -0.02 for p in pred.values()),
                        "guided_le_100_reaches_nsga2_300": bool(guided), "guided_budget": min(guided or [None])
                        if guided else None}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + __doc__.rstrip().split("\n\n")[-1])
    p.add_argument("--tasks", type=int, default=3, help="task seeds 0..N-1 (each a different random function)")
    p.add_argument("--seeds", type=int, default=2, help="search seeds 0..N-1 per task")
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 100], help="predictor-guided real evaluations")
    p.add_argument("--reference-evals", type=int, default=300, help="plain NSGA-II / random run length")
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="predictor training sizes")
    p.add_argument("--splits", type=int, default=3, help="random train/test splits per task and size")
    p.add_argument("--predictors", nargs="+", default=["ridge", "mlp", "gbt", "ensemble", "auto"],
                   choices=list(PREDICTORS))
    p.add_argument("--predictor", default="auto", help="predictor of the guided search (default: %(default)s)")
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=60)
    p.add_argument("--skip-predictors", action="store_true", help="only the search part")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_categorical.json")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    space, tasks, start = cell_space(), {}, time.perf_counter()
    with threadpool_limits(args.threads):
        for t in range(args.tasks):
            task = CellTask(t)
            print(f"task {t}: accuracy {task.accuracy.min():.3f}..{task.accuracy.max():.3f}, "
                  f"latency {task.latency.min():.2f}..{task.latency.max():.2f} ms")
            tasks[str(t)] = {"predictors": {} if args.skip_predictors else
                             predictor_taus(task, space, args.predictors, args.sizes, args.splits),
                             "search": search_bench(task, space, args)}
    if args.skip_predictors:
        args.predictors, args.sizes = ["auto"], []
    summary = summarise(tasks, args)
    setup = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, {"setup": setup, "seconds": time.perf_counter() - start, **summary, "tasks": tasks})
    for n, p in summary["predictors"].items():
        print(f"predictors n={n}: " + "  ".join(f"{k} {v:.3f}" for k, v in p["tau"].items())
              + f"  auto - best single ({p['best_single']}) = {p['auto_minus_best']:+.3f}")
    print("search (relative hypervolume): " + "  ".join(f"guided@{b} {v:.4f}" for b, v in summary["search"]["predictor"].items())
          + "  " + "  ".join(f"nsga2@{e} {v:.4f}" for e, v in summary["search"]["nsga2"].items()))
    print(f"targets: {summary['targets']}  ({time.perf_counter() - start:.0f}s)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
