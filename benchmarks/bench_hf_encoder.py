"""hf_encoder's quality side by side: searched subnets of one supernet vs their pruned-and-fine-tuned twins.

The user's model is a small pretrained encoder fine-tuned on a task where size matters
(``--model bert``: the first-keyword task of :mod:`benchmarks.hf_encoder_text`, a BERT trained on a
related task (the last keyword) then fine-tuned; ``--model vit``: :mod:`benchmarks.hf_encoder_images`, a ViT
pre-trained on one generated image set then fine-tuned on another). Per seed:

- the supernet (``hf_encoder``, ``default`` choices: heads and MLP width 25-100 % per layer, depth 2-4)
  trains once, ``--steps`` optimizer steps through ``supernet.api.train`` (importance order, sandwich,
  every arch distilled (KL) from the fixed pretrained model, AdamW);
- at ~75 / 50 / 30 % of the parameters, ``supernet.api.search`` (accuracy vs params, ``--evaluations``
  real evaluations on the validation split) runs under that params budget; of its evaluated archs the most
  accurate one within 5 points of the size (e.g. 70-75 % of the parameters: :func:`pick_in_band`) is scored
  on the test split (``supernet.api.evaluate``);
- its twin, the pretrained model pruned to the same arch by the same importance order, is fine-tuned alone
  with the same recipe (optimiser, LR schedule, batch, clipping, teacher) for ``--steps / 3`` steps: the
  three twins together take the supernet's optimizer steps (the equal-total-steps rule, in the JSON).

``gap_pt`` = subnet - twin test accuracy (points), with ``gap_se_pt``, the standard error of that paired
difference over the test examples. The goal (issue 31): every ``gap_pt >= -0.5``.

The user's model is fine-tuned at ``--pretrain-lr`` 5e-4: at 1e-3 two BERT seeds of three collapsed to chance
and the third stayed at 34 %; at 5e-4 seeds 0, 1, 2 reach 96-98 % (BERT) and the ViT ~60 % of 8 classes.

    python -m benchmarks.bench_hf_encoder --model bert --seeds 0 1 2   # --jobs 3: the seeds at once, a process each
writes benchmarks/results/bench_hf_encoder.json (``--model vit``: bench_hf_encoder_vit.json).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from supernet.io.files import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (0.75, 0.5, 0.3)
BAND = 0.05  # a subnet compared at size f has between f - BAND and f of the full model's parameters


def predictions(fn, x: torch.Tensor) -> torch.Tensor:
    """Predicted classes of ``fn`` (``x -> logits``) over ``x``, in batches of 256, without gradients."""
    with torch.no_grad():
        return torch.cat([fn(part).argmax(-1) for part in x.split(256)])


def paired_gap(a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(gap, se)`` in points of two classifiers' predictions ``a``, ``b`` on labels ``y``:
    ``gap = 100 (acc_a - acc_b)``, ``se = 100 sd(d) / sqrt(n)`` with ``d_i = [a_i = y_i] - [b_i = y_i]``."""
    d = (a == y).double() - (b == y).double()
    se = float(d.std(unbiased=True) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    return 100 * float(d.mean()), 100 * se


def fine_tune_twin(net, teacher, data, steps: int, cfg) -> None:
    """AdamW at ``cfg.lr`` (no decay on 1-D parameters), linear warm-up then cosine, clip ``cfg.grad_clip``, KL
    from ``teacher``, batches of the supernet's data order (``cfg.seed``): the engine's recipe for one arch."""
    from supernet.core.losses import kl_divergence
    from supernet.training.trainer import lr_factor, make_optimizer
    opt = make_optimizer(net, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, steps))
    net.train()
    for _, (x, _) in zip(range(steps), data.train_batches(0, cfg.batch_size, cfg.seed)):
        with torch.no_grad():
            target = teacher(x)
        loss = kl_divergence(net(x), target)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
    net.eval()


def pick_in_band(rows: list[dict], base, fraction: float, full: int) -> dict:
    """The most accurate (validation) evaluated arch whose params are within ``[fraction - BAND, fraction]`` of
    the full model's: the comparison is at the size asked for, not at a smaller arch that happens to score as well
    (on an easy task the max-accuracy pick under a 75 % budget can be a 27 % arch). Without one in the band,
    the evaluated arch nearest below ``fraction``."""
    ok = [r for r in rows if r.get("status", "ok") == "ok" and "accuracy" in r]
    size = {id(r): base.params(base.space.make(r["arch"])) / full for r in ok}
    under = [r for r in ok if size[id(r)] <= fraction]
    band = [r for r in under if size[id(r)] >= fraction - BAND]
    if band:
        return max(band, key=lambda r: r["accuracy"])
    if not under:
        raise SystemExit(f"no evaluated arch within {fraction:.0%} of the parameters")
    return max(under, key=lambda r: size[id(r)])


def summary(rows: list[dict]) -> list[dict]:
    """Per target size over the seeds: mean ``gap_pt``, its min / max, and mean accuracies and params fraction."""
    out = []
    for fraction in sorted({r["target_fraction"] for r in rows}, reverse=True):
        group = [r for r in rows if r["target_fraction"] == fraction]
        gaps = [r["gap_pt"] for r in group]
        out.append({"target_fraction": fraction, "seeds": len(group), "gap_pt_mean": round(float(np.mean(gaps)), 2),
                    "gap_pt_min": min(gaps), "gap_pt_max": max(gaps),
                    "params_fraction_mean": round(float(np.mean([r["params_fraction"] for r in group])), 3),
                    "subnet_accuracy_mean": float(np.mean([r["subnet_accuracy"] for r in group])),
                    "twin_accuracy_mean": float(np.mean([r["twin_accuracy"] for r in group]))})
    return out


def compare(prepared: dict, args, seed: int, tmp: Path) -> dict:
    """Train the supernet over ``prepared`` (its ``folder``, ``data`` spec, ``data`` bundle, ``space_options``,
    ``pretrained`` module), search each size, fine-tune each twin; one seed's result."""
    from supernet.api import evaluate, search, train
    from supernet.core.registry import build_supernet, space_config
    from supernet.nas.search_config import SearchConfig
    from supernet.training.train_config import TrainConfig
    from search_spaces.hf_encoder import HfEncoderOptions
    from search_spaces.hf_encoder.config import with_model
    data, pretrained = prepared["data"], prepared["pretrained"]
    pretrained_accuracy = float((predictions(pretrained, data.test.x) == data.test.y).double().mean())
    print({"seed": seed, "pretrained_test_accuracy": pretrained_accuracy, **prepared["facts"]}, flush=True)
    options = {**prepared["space_options"], "depth_rule": args.depth_rule, "hidden_fractions": args.hidden_fractions}
    cfg = TrainConfig(data=prepared["spec"], space="hf_encoder", variant="default", steps=args.steps,
                      batch_size=args.batch_size, optimizer="adamw", lr=args.lr, weight_decay=0.01,
                      warmup_steps=args.warmup_steps, sampling=args.sampling, num_random=args.num_random,
                      val_fraction=prepared["val_fraction"], seed=seed, threads=1, tensorboard=False,
                      progress=False, calib_batches=4, checkpoint_every=0, space_options=options)
    t0 = time.time()
    run = train(cfg, out=tmp / "run")
    supernet_seconds = time.time() - t0
    fields = {k: v for k, v in options.items() if k in ("seq_len", "image_size", "depth_rule")}
    fields["hidden_fractions"] = HfEncoderOptions(hidden_fractions=args.hidden_fractions).hidden()
    base = build_supernet("hf_encoder", with_model(space_config("hf_encoder", "default"), prepared["folder"],
                                                   **fields))
    base.before_training(data.calibration_batches(cfg.calib_batches, 256, cfg.seed))  # the run's order
    full, x_test, y_test = base.params(base.space.largest()), data.test.x, data.test.y
    twin_steps, rows = args.steps // len(SIZES), []
    for fraction in SIZES:
        budget = int(fraction * full)
        t0 = time.time()
        found = search(run, SearchConfig(objectives=("accuracy", "params"), budgets={"params": budget},
                                         evaluations=args.evaluations, seed=seed), tmp / f"search-{fraction}",
                       progress=False, tensorboard=False, calib_batches=1, device="cpu", threads=1)
        pick = pick_in_band(found.evaluations, base, fraction, full)
        arch = base.space.make(pick["arch"])
        search_seconds = time.time() - t0
        subnet = evaluate(run, arch, splits=("test",), calib_batches=1, device="cpu", threads=1)[0]["test_accuracy"]
        from supernet.io.checkpoint import load_checkpoint
        trained = load_checkpoint(run)[0].extract(arch)
        subnet_pred = predictions(trained, x_test)
        twin = base.extract(arch)
        t0 = time.time()
        fine_tune_twin(twin, pretrained, data, twin_steps, cfg)
        twin_pred = predictions(twin, x_test)
        gap, se = paired_gap(subnet_pred, twin_pred, y_test)
        twin_acc = float((twin_pred == y_test).double().mean())
        rows.append({"seed": seed, "target_fraction": fraction, "params_budget": budget,
                     "params_fraction": round(base.params(arch) / full, 4), "params": base.params(arch),
                     "arch": arch.to_dict(), "subnet_val_accuracy": pick["accuracy"], "subnet_accuracy": subnet,
                     "subnet_accuracy_extracted": float((subnet_pred == y_test).double().mean()),
                     "twin_accuracy": twin_acc,
                     "pruned_untrained_accuracy": float((predictions(base.extract(arch), x_test) == y_test)
                                                        .double().mean()),
                     "gap_pt": round(100 * (subnet - twin_acc), 2), "gap_se_pt": round(se, 2),
                     "search_evaluations": len(found.evaluations), "search_seconds": round(search_seconds, 1),
                     "twin_steps": twin_steps, "twin_seconds": round(time.time() - t0, 1)})
        print({k: rows[-1][k] for k in ("seed", "target_fraction", "params_fraction", "subnet_accuracy",
                                        "twin_accuracy", "gap_pt", "gap_se_pt")}, flush=True)
    largest = evaluate(run, "largest", splits=("test",), calib_batches=1, device="cpu", threads=1)[0]
    return {"seed": seed, "pretrained_test_accuracy": pretrained_accuracy,
            "largest_test_accuracy": largest["test_accuracy"], "supernet_seconds": round(supernet_seconds, 1),
            "params_full": full, **prepared["facts"], "sizes": rows}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("bert", "vit"), default="bert")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=900, help="supernet steps (each twin: steps / 3)")
    p.add_argument("--pretrain-steps", type=int, default=500, help="related-task (bert) / source-set (vit) steps")
    p.add_argument("--finetune-steps", type=int, default=800, help="the pretrained model's steps on the task")
    p.add_argument("--pretrain-lr", type=float, default=5e-4, help="the pretrained model's fine-tuning LR")
    p.add_argument("--evaluations", type=int, default=40, help="real evaluations per search")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--sampling", default="sandwich", help="the supernet's arch sampling (e.g. flops-even)")
    p.add_argument("--num-random", type=int, default=1, help="random archs per sandwich step")
    p.add_argument("--depth-rule", default="leading", help="layers a shallower subnet keeps: leading or spread")
    p.add_argument("--hidden-fractions", default="1", help="hidden sizes a subnet may take (e.g. 0.5,0.75,1)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in its own process on one thread")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/...)")
    return p.parse_args(argv)


def report(args, task: str, seeds: list[dict], seconds: float) -> dict:
    """The JSON of the seeds done so far."""
    rows = [r for s in seeds for r in s["sizes"]]
    return {"model": args.model, "task": task, "supernet_steps": args.steps, "lr": args.lr,
            "batch_size": args.batch_size, "sampling": args.sampling, "num_random": args.num_random,
            "depth_rule": args.depth_rule, "hidden_fractions": args.hidden_fractions, "teacher": "the pretrained (fine-tuned) model, frozen: every arch and every twin distil from it (KL)",
            "step_rule": f"equal total optimizer steps: the supernet {args.steps} steps for all sizes (each step "
                         f"{2 + args.num_random} archs); each of the {len(SIZES)} twins {args.steps // len(SIZES)} "
                         f"steps (steps / {len(SIZES)}, one arch)",
            "search": f"supernet.api.search, accuracy vs params, {args.evaluations} real evaluations on the "
                      "validation split under each params budget; the most accurate evaluated arch with "
                      f"{BAND:.0%} of its size (params in [f - {BAND}, f] of the full model's), scored on the test "
                      "split",
            "seeds": seeds, "summary": summary(rows), "goal": "each gap_pt >= -0.5",
            "met": all(r["gap_pt"] >= -0.5 for r in rows), "seconds": round(seconds, 1), "threads": 1,
            "jobs": args.jobs}


def one_seed(args, seed: int) -> tuple[dict, str]:
    """``(compare's result, the task's description)`` for ``seed``, in a temporary folder, on one thread."""
    torch.set_num_threads(1)
    if args.model == "bert":
        from .hf_encoder_text import prepare
    else:
        from .hf_encoder_images import prepare
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(Path(tmp), args, seed)
        return compare(prepared, args, seed, Path(tmp)), prepared["task"]


def main(argv=None) -> dict:
    args = parse(argv)
    start, seeds = time.time(), []
    path = args.out or RESULTS / ("bench_hf_encoder.json" if args.model == "bert" else "bench_hf_encoder_vit.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = (pool.map if args.jobs > 1 else map)(one_seed, [args] * len(args.seeds), args.seeds)
        for done, task in runs:
            seeds.append(done)
            result = report(args, task, seeds, time.time() - start)
            atomic_write_json(path, result)  # after every seed: a stopped run keeps the seeds it finished
    return result


if __name__ == "__main__":
    main()
