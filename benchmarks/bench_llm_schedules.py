"""Which training schedule lets the LLM supernet's largest subnet match plain LoRA? (issue 22)

On ``benchmarks/bench_llm.py``'s base model and data (run that first, or at least its base stage),
at equal optimizer steps (``--steps``, default 100) and the same recipe (AdamW 2e-3, batch 16 in 2
micro-batches, warm-up 20 then cosine, clipping 5, label smoothing 0), train:

- plain LoRA with stock ``peft`` (rank 32, alpha 64, all seven projections);
- the supernet under each schedule of :data:`ROUTES`: the four-pass sandwich (largest, smallest, 2
  random), largest + smallest, largest + one random, those with the distilled terms weighted, LoNAS's
  one random sub-adapter per step (``uniform``), and the largest alone (a check: it must match plain LoRA);

then the validation loss of the largest, median and smallest subnet, and each schedule's share of
plain LoRA's improvement: ``(base - largest) / (base - plain)``. Each route runs in its own process
(``--route NAME``), so several can run side by side; finished routes are kept and skipped.

    python -m benchmarks.bench_llm_schedules --steps 100          # every route, one after another
    python -m benchmarks.bench_llm_schedules --route ls-w05       # one route
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROUTES = {  # name -> training options of the supernet (None: plain PEFT LoRA)
    "plain-lora": None,
    "sandwich": {"sampling": "sandwich", "num_random": 2, "distill_weight": 1.0},
    "largest-smallest": {"sampling": "sandwich", "num_random": 0, "distill_weight": 1.0},
    "ls-w05": {"sampling": "sandwich", "num_random": 0, "distill_weight": 0.5},
    "ls-w03": {"sampling": "sandwich", "num_random": 0, "distill_weight": 0.3},
    "largest-random": {"sampling": "largest-random", "num_random": 1, "distill_weight": 1.0},
    "lr-w03": {"sampling": "largest-random", "num_random": 1, "distill_weight": 0.3},
    "uniform (LoNAS)": {"sampling": "uniform"},
    "largest only": {"sampling": "sandwich", "warm_largest": 10**9},
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default="runs/llm-demo", help="bench_llm.py's folder (base/, docs.jsonl)")
    p.add_argument("--out", default="runs/llm-schedules")
    p.add_argument("--out-json", default="benchmarks/results/bench_llm_schedules.json")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--route", help="run this route only (a name of ROUTES)")
    return p.parse_args(argv)


def recipe(args, schedule: dict):
    from supernet import TrainConfig
    demo = Path(args.demo)
    return TrainConfig(space="llm_lora", variant="default", data=f"text:{demo / 'docs.jsonl'}",
                       space_options={"model": str(demo / "base"), "seq_len": 128}, batch_size=16, grad_accum=2,
                       optimizer="adamw", lr=2e-3, weight_decay=0.0, warmup_steps=20, steps=args.steps,
                       label_smoothing=0.0, checkpoint_every=0, calib_batches=4, seed=0, threads=args.threads,
                       progress=False, tensorboard=False, **schedule)


def run_route(args, name: str) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    start, schedule = time.time(), ROUTES[name]
    if schedule is None:
        from benchmarks.llm_plain_lora import peft_model, train_plain, val_loss

        from supernet.data.load import load_data
        cfg = recipe(args, {})
        data = load_data(cfg.data, val_fraction=cfg.val_fraction, seed=0,
                         reader={"tokenizer": cfg.space_options["model"], "seq_len": 128, "text_field": "text"})
        model = peft_model(cfg.space_options["model"], 32, 64.0)
        before = val_loss(model, data)
        times = train_plain(model, data.train_batches(0, cfg.batch_size, cfg.seed), args.steps, cfg)
        result = {"base_loss": before, "largest": val_loss(model, data), "s_per_step": sorted(times)[len(times) // 2]}
    else:
        from supernet import evaluate, train
        run = Path(args.out) / f"run-{name.split()[0]}"
        train(recipe(args, schedule), run, overwrite=True)
        rows = evaluate(run, ["largest", "median", "smallest"], splits=("val",), calib_batches=1, device="cpu")
        log = [json.loads(line) for line in open(run / "log.jsonl") if '"loss/' in line]
        steps = sorted(b["time"] - a["time"] for a, b in zip(log, log[1:]))
        result = {"largest": rows[0]["val_loss"], "median": rows[1]["val_loss"], "smallest": rows[2]["val_loss"],
                  "s_per_step": steps[len(steps) // 2], "schedule": schedule}
    return {**result, "steps": args.steps, "seconds": round(time.time() - start, 1)}


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ([args.route] if args.route else list(ROUTES)):
        path = out / f"{name.split()[0]}.json"
        if not path.exists():
            path.write_text(json.dumps(run_route(args, name), indent=1))
            print(name, path.read_text(), flush=True)
    found = {n: json.loads((out / f"{n.split()[0]}.json").read_text()) for n in ROUTES
             if (out / f"{n.split()[0]}.json").exists()}
    if "plain-lora" not in found:
        return 0
    plain = found["plain-lora"]
    base, gain = plain["base_loss"], plain["base_loss"] - plain["largest"]
    for r in found.values():
        r["share_of_plain_improvement"] = (base - r["largest"]) / gain
    Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out_json).write_text(json.dumps({"steps": args.steps, "base_val_loss": base, "routes": found,
                                               "note": "2-core shared machine; s_per_step are not comparable "
                                                       "across routes run at different loads"}, indent=1))
    print(f"{'route':<18} {'largest':>8} {'median':>8} {'smallest':>8} {'share':>6}")
    for n, r in found.items():
        print(f"{n:<18} {r['largest']:8.4f} {r.get('median', float('nan')):8.4f} "
              f"{r.get('smallest', float('nan')):8.4f} {100 * r['share_of_plain_improvement']:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
