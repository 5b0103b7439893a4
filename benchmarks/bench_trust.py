"""How far can you trust a subnet: supernet accuracy vs the same arch trained stand-alone.

For N archs of a trained MNIST-1D supernet (smallest, largest, the rest spread evenly over
the FLOPs range, seeded) it compares the supernet's accuracy (weights inherited, BN
recalibrated) with the arch trained stand-alone from the supernet's initialisation with the
same data, batches, number of optimizer steps, optimizer, LR schedule, label smoothing and
clipping: on the labels (``ce``), and distilled from the supernet's largest subnet (``kd``,
the fair match for in-place KD). Reported per run (test split unless named):

- Kendall tau and Spearman rho of supernet vs stand-alone accuracy, over the N archs;
- the gap ``g_i = 100 (standalone_i - supernet_i)`` in points: mean, mean |g|, max;
- tau of the supernet's *validation* ranking vs the stand-alone *test* ranking;
- for the default run, the same after ``supernet finetune`` (K steps of KD from the largest).

``--runs`` adds ablations of the recipe (each a supernet trained with the same base config):
``kl``, ``alpha`` (AlphaNet's adaptive alpha-divergence), ``nokd`` (sandwich on labels only), ``spos`` (uniform single path, equal steps),
``spos-4x`` (4x steps: as many forward/backward passes as the sandwich's 4 archs per step;
wall times reported), ``random4`` (4 random archs per step), ``long2x`` (twice the steps),
``flops-even`` (random archs drawn evenly over FLOPs), ``share-r`` (one resolution per step for
every arch, OFA's per-batch resolution), ``worst-up`` (each random arch the hardest on the batch of
3 equal-FLOPs candidates, AttentiveNAS), ``calib32`` (the default supernet, BN
recalibrated on 32 batches instead of 8). Stand-alone results are shared by every run.

Resumable: supernets checkpoint as they train, and every per-arch result is written
atomically to ``--work`` as it finishes; a rerun skips what is done. ``--budget-min`` stops
starting new work after that many minutes (rerun to continue).

Examples::

    python -m benchmarks.bench_trust --workers 2                        # default: 30 archs, the default recipe
    python -m benchmarks.bench_trust --supernet runs/demo --workers 2   # reuse the `make demo` supernet
    python -m benchmarks.bench_trust --runs default,kl,nokd,spos,spos-4x,flops-even,random4,calib32
    python -m benchmarks.bench_trust --device cuda --workers 4 --archs 30 --work runs/bench-trust-gpu
    python -m benchmarks.bench_trust --quick --work /tmp/trust-quick --out /tmp/trust.json   # CI: seconds
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from benchmarks.trust_jobs import compare, finished, init_worker, pick_archs, recipe_of, run_job, stored, weights_digest  # noqa: E402
from benchmarks.trust_report import REGRET_QUANTILES, plot, print_summary, recipes, regret, regret_budgets  # noqa: E402

from supernet.core.errors import SupernetError  # noqa: E402
from supernet.core.task import KD_KINDS  # noqa: E402
from supernet.io.files import atomic_write_json  # noqa: E402

# run name -> (TrainConfig overrides, multiple of the base steps, eval calib batches, supernet of another run)
RUNS = {"default": ({}, 1, None, None), "kl": ({"kd": "kl"}, 1, None, None), "alpha": ({"kd": "alpha"}, 1, None, None),
        "nokd": ({"kd": "none"}, 1, None, None),
        "spos": ({"sampling": "uniform"}, 1, None, None), "spos-4x": ({"sampling": "uniform"}, 4, None, None),
        "random4": ({"num_random": 4}, 1, None, None), "long2x": ({}, 2, None, None),
        "flops-even": ({"sampling": "flops-even"}, 1, None, None), "calib32": ({}, 1, 32, "default"),
        "share-r": ({"share_dims": "r"}, 1, None, None), "worst-up": ({"sampling": "worst-up"}, 1, None, None),
        "warm30": ({"kd": "kl:0.3,alpha"}, 1, None, None), "warm60": ({"kd": "kl:0.6,alpha"}, 1, None, None),
        "labels30": ({"kd": "none:0.3,alpha"}, 1, None, None),
        "warm30-clip": ({"kd": "kl:0.3,alpha", "grad_clip_value": 1.0}, 1, None, None),
        "alpha-clip": ({"kd": "alpha", "grad_clip_value": 1.0}, 1, None, None)}
SEEDED = re.compile(r"(.+)-s([1-9][0-9]*)")  # NAME-sN: run NAME's recipe, supernet seed + N


def spec(name: str, base=None) -> tuple:
    """``RUNS[name]``, or for ``NAME-sN`` run NAME's entry with the supernet seed ``base.seed + N``
    (another initialisation, data order and validation split; the test split stays)."""
    seeded = SEEDED.fullmatch(name)
    if name in RUNS or not seeded or seeded.group(1) not in RUNS:
        return RUNS[name]
    overrides, multiple, calib, source = RUNS[seeded.group(1)]
    n = int(seeded.group(2))
    return {**overrides, "seed": (base.seed if base else 0) + n}, multiple, calib, source and f"{source}-s{n}"


def is_run(name: str) -> bool:
    seeded = SEEDED.fullmatch(name)
    return name in RUNS or bool(seeded and seeded.group(1) in RUNS)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"error: {message} (see --help)\n")


def parse(argv=None):
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", type=int, default=30, help="archs compared (default: %(default)s)")
    p.add_argument("--runs", default="default", help=f"comma-separated, from {list(RUNS)}; NAME-s1 is run NAME with "
                   "supernet seed + 1 (default: %(default)s)")
    p.add_argument("--supernet", help="use this trained run as the default run's supernet (its config is the base)")
    p.add_argument("--steps", type=int, help="supernet steps of the base config (default: 16 epochs = 896)")
    p.add_argument("--samples", type=int, help="MNIST-1D examples to generate (default: 10000)")
    p.add_argument("--kd", action=argparse.BooleanOptionalAction, default=True, help="also the KD stand-alone variant")
    p.add_argument("--kd-every", type=int, default=5, help="the KD variant on every K-th arch only; it costs as much "
                   "as the CE one (default: %(default)s, so the default run fits about 80 min on 2 CPU cores)")
    p.add_argument("--seeds", type=int, default=1, help="stand-alone seeds (2+: also seed-to-seed tau, the noise floor)")
    p.add_argument("--standalone-from", metavar="REPORT", help="take the stand-alone CE accuracies of an earlier "
                   "report (its per_arch) instead of retraining them; refused unless its archs, steps and base "
                   "match. Only valid while the training numerics are unchanged: spot-check an arch or two")
    p.add_argument("--finetune-steps", type=int, default=200, help="steps of `supernet finetune` (0 = skip)")
    p.add_argument("--finetune-lr", type=float, default=0.02, help="its peak LR (default: %(default)s)")
    p.add_argument("--finetune-kd", default="kl", help="comma-separated `supernet finetune --kd` values, each "
                   "fine-tuning all archs from the default supernet; the first is the report's `finetune` "
                   "(default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="processes for the per-arch jobs (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the arch pick and the supernets")
    p.add_argument("--budget-min", type=float, help="start no new work after this many minutes (rerun to continue)")
    p.add_argument("--quick", action="store_true", help="tiny space, 4 archs, 8 steps: seconds (tests)")
    p.add_argument("--work", default=str(REPO / "runs" / "bench-trust"), help="supernets and per-arch results")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_trust.json"))
    p.add_argument("--plot", default=str(REPO / "docs" / "trust_mnist1d.png"), help="scatter plot PNG ('' = none)")
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.steps, args.samples, args.finetune_steps, args.workers, args.kd_every = 4, 8, 1000, 4, 1, 1
    args.runs, args.finetune_kd = args.runs.split(","), args.finetune_kd.split(",")
    unknown = [r for r in args.runs if not is_run(r)]
    if any(k not in KD_KINDS for k in args.finetune_kd):
        p.error(f"--finetune-kd takes values from {list(KD_KINDS)}, comma-separated; got {','.join(args.finetune_kd)!r}")
    if unknown or args.archs < 2 or min(args.workers, args.seeds, args.kd_every, args.threads) < 1:
        p.error(f"unknown run {unknown[0]!r}; runs are {list(RUNS)}" if unknown else
                "--archs must be >= 2; --workers, --threads, --seeds and --kd-every >= 1")
    return args


def base_config(args):
    """The default run's TrainConfig: that of ``--supernet``, or the defaults (``--quick``: tiny space)."""
    from supernet.core.registry import get_space
    from supernet.io.checkpoint import load_checkpoint
    from supernet.training.train_config import TrainConfig, with_space_defaults
    if args.supernet:
        cfg = TrainConfig.from_dict(load_checkpoint(args.supernet)[1]["train"])
    else:
        cfg = TrainConfig(seed=args.seed, steps=args.steps, samples=args.samples)
        cfg = with_space_defaults(cfg, get_space(cfg.space).train_defaults)  # the recipes record every value
        if args.quick:
            cfg = replace(cfg, variant="tiny", batch_size=32, warmup_steps=2, calib_batches=1)
    return replace(cfg, device=args.device, threads=args.workers * args.threads, tensorboard=False, progress=False,
                   checkpoint_every=100, data_workers=0)


def plan_supernets(args, base, total) -> tuple[dict, list[dict]]:
    """``(run -> checkpoint of each finished supernet, training jobs for the others)``."""
    from supernet.io.checkpoint import resolve_checkpoint
    done, jobs = {}, []
    for name in dict.fromkeys(spec(r)[3] or r for r in args.runs):
        if name == "default" and args.supernet:
            done[name] = str(resolve_checkpoint(args.supernet).resolve())
            continue
        steps = total * spec(name)[1]
        folder = Path(args.work) / "supernets" / name
        if finished(folder, steps):
            done[name] = str(resolve_checkpoint(folder).resolve())
        else:
            cfg = replace(base, steps=steps, threads=args.threads, **spec(name, base)[0])
            jobs.append(dict(kind="train", run=name, folder=str(folder), config=asdict(cfg), steps=steps))
    return done, jobs


def _total_steps(cfg) -> int:
    if cfg.steps:
        return cfg.steps
    from supernet.data.load import load_data
    data = load_data(cfg.data, samples=cfg.samples, val_fraction=cfg.val_fraction, seed=cfg.seed)
    return cfg.epochs * data.steps_per_epoch(cfg.batch_size)


def make_jobs(args, base, archs, total, run: str | None, checkpoint: str | None) -> list[dict]:
    """The per-arch jobs not stored yet: with ``run=None`` the stand-alone ones (no supernet
    needed), else those that need the finished supernet ``run`` (``checkpoint``)."""
    work, jobs = Path(args.work) / "results", []

    def add(kind, name, overrides, steps, calib, every=1, source=None):
        recipe = recipe_of(replace(base, **(spec(name, base)[0] if is_run(name) else {})), kind, steps, overrides)
        if kind != "ce":  # depends on the supernet's weights, not only on its recipe
            recipe.update(supernet=checkpoint, weights=weights_digest(checkpoint), calib_batches=calib)
        order = range(len(archs)) if not name.startswith("standalone-seed") else spread_order(len(archs))
        for i in order:
            arch, path = archs[i], work / name / kind / f"{i:03d}.json"
            if i % every == 0 and stored(path, recipe, arch) is None:
                jobs.append(dict(kind=kind, run=name, index=i, arch=arch.to_dict(), checkpoint=source, recipe=recipe,
                                 path=str(path), device=args.device, calib_batches=calib, meta=standalone_meta(base)))
    if run is None:
        for s in range(args.seeds):
            add("ce", standalone_run(s), {"seed": base.seed + s} if s else {}, total, base.calib_batches)
        return jobs
    for name in args.runs:
        if (spec(name)[3] or name) == run:
            add("eval", name, {}, 0, spec(name)[2] or base.calib_batches, source=checkpoint)
    if run == "default" and args.finetune_steps:
        for kd in args.finetune_kd:
            add(f"ft-{kd}", "default", {"lr": args.finetune_lr, "warmup_steps": 0, "seed": base.seed + 1, "kd": kd},
                args.finetune_steps, base.calib_batches, source=checkpoint)
    if run == "default" and args.kd:
        add("kd", "standalone", {}, total, base.calib_batches, args.kd_every, source=checkpoint)
    return jobs


def standalone_run(s: int) -> str:
    """The run name of stand-alone seed ``base.seed + s``."""
    return f"standalone-seed{s}" if s else "standalone"


def import_standalone(args, base, archs, total) -> int:
    """Write the stand-alone CE accuracies of ``--standalone-from``'s report as stored results
    (test accuracy only; ``imported_from`` names the report); returns how many were written."""
    report = json.loads(Path(args.standalone_from).read_text())
    ours = {k: getattr(base, k) for k in ("lr", "batch_size", "seed", "samples")}
    rows = report.get("per_arch", [])
    if (report.get("supernet_steps") != total or report.get("base") != ours
            or [r["arch"] for r in rows] != [a.to_dict() for a in archs]):
        raise SupernetError(f"--standalone-from {args.standalone_from}: its archs, steps or base config differ "
                            "from this run's")
    written, work = 0, Path(args.work) / "results"
    for s in range(args.seeds):
        recipe = recipe_of(base, "ce", total, {"seed": base.seed + s} if s else {})
        for i, (arch, row) in enumerate(zip(archs, rows)):
            value = row["standalone_ce"] if s == 0 else row.get("standalone_ce_seeds", {}).get(str(s))
            path = work / standalone_run(s) / "ce" / f"{i:03d}.json"
            if value is None or stored(path, recipe, arch) is not None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, {"test_accuracy": value, "val_accuracy": None, "flops": row["flops"],
                                     "steps": total, "arch": arch.to_dict(), "key": arch.to_json(), "kind": "ce",
                                     "recipe": recipe, "seconds": 0.0, "imported_from": str(args.standalone_from)})
            written += 1
    return written


def spread_order(n: int) -> list[int]:
    """Even indices first, then odd: the extra seeds (queued last) stopped part-way by
    ``--budget-min`` still cover the whole cost range (archs are sorted by cost)."""
    return sorted(range(n), key=lambda i: (i % 2, i))


def standalone_meta(base) -> dict:
    """What a stand-alone job needs of a run's config.json: space, its config, the training options."""
    from supernet.core.registry import space_config
    variant = base.variant or "mnist1d"
    return {"space": base.space, "variant": variant, "space_config": space_config(base.space, variant).to_dict(),
            "train": asdict(base)}


def _priority(job: dict) -> int:
    """Supernets first (their jobs wait on them), then the cheap evaluations, then what the
    targets need most: stand-alone CE, fine-tuning, the KD variant; extra seeds last."""
    if job["run"].startswith("standalone-seed"):
        return 5
    return ["train", "eval", "ce", "ft", "kd"].index(job["kind"].split("-")[0])


def run_jobs(args, base, archs, total, deadline: float) -> dict:
    """Train the missing supernets and run every per-arch job on ``--workers`` processes; a
    finished supernet queues its jobs first. Starts nothing after the deadline. ``run -> checkpoint``."""
    supernets, queue = plan_supernets(args, base, total)
    queue += make_jobs(args, base, archs, total, None, None)
    for run, checkpoint in supernets.items():
        queue = sorted(queue + make_jobs(args, base, archs, total, run, checkpoint), key=_priority)
    print(f"{len(queue)} jobs to run", flush=True)
    count, pending = 0, set()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=init_worker,
                             initargs=(args.threads,)) as pool:
        while queue or pending:
            while queue and len(pending) < args.workers and time.time() < deadline:
                pending.add(pool.submit(run_job, {**queue.pop(0), "deadline": deadline}))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                r, count = future.result(), count + 1
                if r["kind"] == "train":
                    print(f"[{count}] supernet {r['run']}: {r.get('checkpoint') or r.get('error')}", flush=True)
                    if r.get("checkpoint"):
                        supernets[r["run"]] = r["checkpoint"]
                        queue = sorted(queue + make_jobs(args, base, archs, total, r["run"], r["checkpoint"]),
                                       key=_priority)
                    continue
                print(f"[{count}] {r['kind']:<4} {r['arch']['r']} flops={r['flops']} "
                      f"test={r['test_accuracy']:.4f} ({r['seconds']:.0f} s)", flush=True)
    return supernets


def summarize(args, base, archs, costs, supernets, total, wall) -> dict:
    """The JSON report: per-arch accuracies; per run the comparisons against stand-alone and the
    regret at five MACs budgets; per recipe (its runs over supernet seeds) the mean and range."""
    work = Path(args.work) / "results"

    def table(run, kind, split="test"):
        out = {}
        for i, arch in enumerate(archs):
            path = work / run / kind / f"{i:03d}.json"
            if path.exists():
                out[arch.to_json()] = json.loads(path.read_text())[f"{split}_accuracy"]
        return out
    ce, kd = table("standalone", "ce"), table("standalone", "kd")
    seeds = [table(standalone_run(s), "ce") for s in range(1, args.seeds)]
    mean_ce = seed_mean([ce] + seeds)
    cost = {a.to_json(): c for a, c in zip(archs, costs)}
    truth = mean_ce if seeds else ce
    budgets = regret_budgets(costs)

    def judged(test, val) -> dict:  # one ranking of the archs against the stand-alone references
        out = {"vs_standalone_ce": compare(test, ce), "vs_standalone_kd": compare(test, kd),
               "regret": regret(val, truth, cost, budgets)}
        if seeds:
            out["vs_standalone_seed_mean"] = compare(test, mean_ce)
        return out
    runs = {}
    for run in args.runs:
        sup, val = table(run, "eval"), table(run, "eval", "val")
        if not sup:
            continue
        source = Path(args.work) / "supernets" / (spec(run)[3] or run)
        wall_s = json.loads((source / "wall.json").read_text())["train_seconds"] if (source / "wall.json").exists() else None
        runs[run] = {"train": {**spec(run, base)[0], "steps": total * spec(run)[1], "train_wall_s": wall_s},
                     "eval_calib_batches": spec(run)[2] or base.calib_batches,
                     "largest_test": sup.get(archs[-1].to_json()), "smallest_test": sup.get(archs[0].to_json()),
                     **judged(sup, val), "val_vs_standalone_ce_test": compare(val, ce)}
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "plot", "work")},
              "supernet_steps": total, "base": {k: getattr(base, k) for k in ("lr", "batch_size", "seed", "samples")},
              "runs": runs, "recipes": recipes(runs), "standalone": {"largest_ce": ce.get(archs[-1].to_json()),
                                                                     "smallest_ce": ce.get(archs[0].to_json()),
                                                                     "kd_vs_ce": compare(kd, ce)},
              "wall_s": round(wall, 1)}
    if seeds:
        report["standalone"]["seed_to_seed"] = compare(seeds[0], ce)
    report["regret"] = {"quantiles": list(REGRET_QUANTILES), "budgets_flops": budgets, "ranked_by": "validation "
                        "accuracy", "truth": f"stand-alone test accuracy, mean of {1 + len(seeds)} seed(s)",
                        "target_pt": report["standalone"].get("seed_to_seed", {}).get("mean_abs_gap_pt"),
                        "largest_under_budget": regret(cost, truth, cost, budgets)}
    fts = {k: (table("default", f"ft-{k}"), table("default", f"ft-{k}", "val")) for k in args.finetune_kd}
    fts = {k: v for k, v in fts.items() if v[0]}
    if fts:
        report["finetune"] = {"steps": args.finetune_steps, "lr": args.finetune_lr, "kd": next(iter(fts)),
                              **judged(*next(iter(fts.values())))}
        report["finetune_by_kd"] = {k: judged(test, val) for k, (test, val) in fts.items()}
    report["job_seconds"] = job_seconds(work)
    first_ft = next(iter(fts.values()), ({}, {}))[0]
    report["per_arch"] = [{"index": i, "arch": a.to_dict(), "flops": costs[i],
                           "standalone_ce": ce.get(a.to_json()), "standalone_kd": kd.get(a.to_json()),
                           "standalone_ce_seeds": {str(s): t.get(a.to_json()) for s, t in enumerate(seeds, 1)},
                           "finetuned": first_ft.get(a.to_json()),
                           "finetuned_by_kd": {k: test.get(a.to_json()) for k, (test, _) in fts.items()},
                           "supernet": {r: table(r, "eval").get(a.to_json()) for r in runs}}
                          for i, a in enumerate(archs)]
    return report


def seed_mean(tables: list[dict]) -> dict:
    """``arch key -> mean accuracy`` over the stand-alone seeds, for the archs every seed has:
    a reference with less seed noise than any single seed."""
    keys = set.intersection(*(set(t) for t in tables))
    return {k: sum(t[k] for t in tables) / len(tables) for k in sorted(keys)}


def job_seconds(work: Path) -> dict:
    """Seconds the stored per-arch jobs took, summed per ``run/kind`` (one worker each): with
    ``W`` workers a full run takes about the supernets' training plus ``sum / W``."""
    totals = {}
    for path in sorted(work.glob("*/*/*.json")):
        key = f"{path.parent.parent.name}/{path.parent.name}"
        totals[key] = round(totals.get(key, 0.0) + json.loads(path.read_text())["seconds"], 1)
    return totals


def main(argv=None) -> int:
    args = parse(argv)
    t0 = time.time()
    deadline = t0 + 60 * args.budget_min if args.budget_min else float("inf")
    import torch
    torch.set_num_threads(args.workers * args.threads)
    from supernet.core.registry import build_supernet, space_config
    try:
        from supernet.core.placement import Placement
        args.device = str(Placement.make(args.device).device)  # a missing GPU is refused here, in one line
        base = base_config(args)
        base.check()
        model = build_supernet(base.space, space_config(base.space, base.variant or "mnist1d"))
        archs = pick_archs(model.space, model.flops, args.archs, args.seed)
        total = _total_steps(base)
        if args.standalone_from:
            print(f"{import_standalone(args, base, archs, total)} stand-alone results taken from "
                  f"{args.standalone_from}", flush=True)
        supernets = run_jobs(args, base, archs, total, deadline)
    except SupernetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = summarize(args, base, archs, [model.flops(a) for a in archs], supernets, total, time.time() - t0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    print_summary(report)
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
