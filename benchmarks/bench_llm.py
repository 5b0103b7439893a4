"""LLM demo and benchmark: LoRA-NAS on a small Llama, real text, 2 CPU cores, minutes.

Stages (each skipped when its output exists, so an interrupted run continues):

1. **corpora** from the Python standard library, offline: *code* (the source of 20 stdlib
   packages, for pre-training) and *docs* (the English text of ``pydoc_data.topics``, the
   language reference's topics, one JSONL record each: the LoRA-NAS domain).
2. **base**: a byte-level BPE tokenizer (``--vocab``) trained on both, and a Llama model
   (``--hidden``, ``--layers``...) pre-trained on *code* for ``--pretrain-steps`` (plain LM loss,
   AdamW), saved with ``save_pretrained`` into ``OUT/base``.
3. **supernet**: ``supernet.train`` on *docs* with the ``llm_lora`` space (ranks {8,16,24,32},
   MLP widths 50-100 %, up to 2 trailing layers skipped) and the space's default schedule
   (``--sampling`` etc. override it).
3b. **plain LoRA**: stock ``peft`` LoRA (rank 32 = the supernet's largest, alpha 64, q/k/v/o and
   gate/up/down) on the same base, data, batches, steps, optimizer, LR schedule, clipping and
   micro-batches (``benchmarks/llm_plain_lora.py``); its validation loss and the base model's.
4. **search**: ``supernet.search`` with objectives validation loss and params.
5. **measure**: export (merged form) the largest, smallest and median (LoNAS's heuristic:
   the middle choice of every dimension) archs and every arch of the searched front; for each,
   validation loss (from the search's real evaluations), params, and tokens/s of the merged
   model (``--batch`` x seq_len tokens per forward, ``--threads`` threads, median of interleaved
   rounds) on ``--device``.

Targets: the largest subnet reaches >= 95 % of plain LoRA's validation-loss improvement at equal
optimizer steps (``(base - largest) / (base - plain)``, issue 22); the searched front dominates the
median heuristic (lower loss at no more params, or fewer params at no higher loss); one searched
subnet runs >= 1.3x the tokens/s of the full merged model with <= 2 % higher validation loss
(issue 13).

    python -m benchmarks.bench_llm                       # everything, CPU (about 9 min on 2 cores)
    python -m benchmarks.bench_llm --stage measure --device cuda --out-json benchmarks/results/bench_llm_cuda.json
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch

PACKAGES = ("asyncio", "email", "http", "json", "logging", "unittest", "xml", "concurrent", "importlib", "urllib",
            "multiprocessing", "collections", "ctypes", "sqlite3", "tomllib", "zoneinfo", "wsgiref", "html", "dbm",
            "curses")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/llm-demo", help="demo folder (default: %(default)s)")
    p.add_argument("--out-json", default="benchmarks/results/bench_llm.json")
    p.add_argument("--stage", choices=["all", "measure"], default="all",
                   help="all: build what is missing, then measure; measure: only measure existing exports")
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--intermediate", type=int, default=384)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--pretrain-steps", type=int, default=500)
    p.add_argument("--nas-steps", type=int, default=300)
    p.add_argument("--evaluations", type=int, default=60)
    p.add_argument("--batch", type=int, default=8, help="sequences per timed forward")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampling", help="the supernet's --sampling (default: the space's)")
    p.add_argument("--num-random", type=int, help="the supernet's --num-random (default: the space's)")
    p.add_argument("--distill-weight", type=float, help="the supernet's --distill-weight (default: the space's)")
    p.add_argument("--warm-largest", type=int, help="the supernet's --warm-largest (default: the space's)")
    p.add_argument("--random-weights", action="store_true",
                   help="measure: build each merged model from its config.json with random weights (timing does "
                        "not depend on the values; lets a GPU machine time the exports from their configs alone)")
    return p.parse_args(argv)


# -- 1. corpora ------------------------------------------------------------------------------
def corpora(out: Path) -> tuple[Path, Path]:
    code, docs = out / "code", out / "docs.jsonl"
    if not code.exists():
        lib = sysconfig.get_paths()["stdlib"]
        tmp = out / "code.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for pkg in PACKAGES:
            for i, path in enumerate(sorted(glob.glob(f"{lib}/{pkg}/**/*.py", recursive=True))):
                (tmp / f"{pkg}-{i:04d}.py").write_text(Path(path).read_text(encoding="utf-8", errors="replace"))
        os.replace(tmp, code)
    if not docs.exists():
        from pydoc_data.topics import topics
        lines = [json.dumps({"topic": k, "text": v}) for k, v in sorted(topics.items())]
        docs.write_text("\n".join(lines) + "\n")
    return code, docs


# -- 2. pre-trained base -----------------------------------------------------------------------
def base_model(args, out: Path, code: Path, docs: Path) -> Path:
    folder = out / "base"
    if (folder / "config.json").exists():
        return folder
    from search_spaces.llm_lora.testing import build_model, save_model, train_tokenizer
    from supernet.data.text import read_documents
    code_docs, doc_docs = read_documents(code, "text"), read_documents(docs, "text")
    tokenizer = train_tokenizer(code_docs + doc_docs, args.vocab)
    model = build_model(len(tokenizer), hidden=args.hidden, layers=args.layers, heads=4, kv_heads=2,
                        intermediate=args.intermediate, seed=args.seed)
    ids = []
    for doc in code_docs:
        ids += tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    blocks = torch.tensor(ids[:len(ids) // (args.seq_len + 1) * (args.seq_len + 1)]).view(-1, args.seq_len + 1)
    pretrain(model, blocks, args)
    save_model(folder, model, tokenizer)
    return folder


def pretrain(model, blocks: torch.Tensor, args) -> None:
    """Plain next-token training of the whole model: AdamW, warm-up then cosine, batch 16."""
    torch.manual_seed(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    steps, warm = args.pretrain_steps, max(1, args.pretrain_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * s / steps)))
    rng = np.random.default_rng(args.seed)
    model.train()
    t0 = time.time()
    for step in range(steps):
        batch = blocks[torch.as_tensor(rng.integers(0, len(blocks), 16))]
        loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss  # HF shifts labels itself
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"pretrain step {step + 1}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()


# -- 3-4. supernet and search ------------------------------------------------------------------
def recipe(args, base: Path, docs: Path):
    """The TrainConfig of the supernet run; plain LoRA follows the same recipe."""
    from supernet import TrainConfig
    schedule = {k: getattr(args, k) for k in ("sampling", "num_random", "distill_weight", "warm_largest")
                if getattr(args, k) is not None}
    return TrainConfig(space="llm_lora", variant="default", space_options={"model": str(base), "seq_len": args.seq_len},
                       data=f"text:{docs}", batch_size=16, grad_accum=2, optimizer="adamw", lr=2e-3, weight_decay=0.0,
                       warmup_steps=20, steps=args.nas_steps, checkpoint_every=100, calib_batches=4, seed=args.seed,
                       threads=args.threads, progress=True, **schedule)


def plain_lora(args, out: Path, base: Path, docs: Path) -> dict:
    """Stock PEFT LoRA at the supernet's largest rank, same recipe and batches; its and the base's val loss."""
    path = out / "plain_lora.json"
    if path.exists():
        return json.loads(path.read_text())
    from benchmarks.llm_plain_lora import peft_model, train_plain, val_loss

    from supernet.core.registry import space_config
    from supernet.data.load import load_data
    cfg = recipe(args, base, docs)
    space = space_config("llm_lora", "default")
    data = load_data(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed,
                     reader={"tokenizer": str(base), "seq_len": args.seq_len, "text_field": "text"})
    torch.manual_seed(cfg.seed)
    model = peft_model(base, max(space.ranks), space.lora_alpha)
    before = val_loss(model, data)
    times = train_plain(model, data.train_batches(0, cfg.batch_size, cfg.seed), cfg.steps, cfg)
    result = {"base_val_loss": before, "val_loss": val_loss(model, data), "rank": max(space.ranks),
              "alpha": space.lora_alpha, "steps": cfg.steps, "s_per_step": float(np.median(times[1:])),
              "recipe": {k: getattr(cfg, k) for k in ("optimizer", "lr", "weight_decay", "warmup_steps", "grad_clip",
                                                       "batch_size", "grad_accum")}}
    path.write_text(json.dumps(result, indent=1))
    return result


def supernet_run(args, out: Path, base: Path, docs: Path) -> Path:
    from supernet import train
    run = out / "supernet"
    if (run / "checkpoints").exists() and any((run / "checkpoints").glob("step-*")):
        saved = json.loads((run / "config.json").read_text())
        steps = [int(p.name.split("-")[1]) for p in (run / "checkpoints").glob("step-*")]
        if max(steps) >= saved["total_steps"]:
            return run
        from supernet import resume_training
        return resume_training(run)
    return train(recipe(args, base, docs), run)


def search_run(args, out: Path, run: Path) -> Path:
    from supernet import SearchConfig, search
    folder = out / "search"
    if (folder / "pareto.json").exists():
        return folder
    search(run, SearchConfig(objectives=("loss", "params"), evaluations=args.evaluations, seed=args.seed), folder,
           overwrite=True, tensorboard=False, calib_batches=4, device="cpu")
    return folder


# -- 5. measure ---------------------------------------------------------------------------------
def subnets(search: Path) -> list[dict]:
    """Largest, smallest, median and every front arch (by params), with their real validation loss and params."""
    import csv
    rows = list(csv.DictReader(open(search / "evaluations.csv")))
    baselines = [{"name": label, **_row(next(r for r in rows if label in r["baseline"].split("+")))}
                 for label in ("largest", "smallest", "median")]
    front = sorted((r for r in rows if r["is_pareto"] == "True"), key=lambda r: float(r["params"]))
    return baselines + [{"name": f"front{i}", **_row(row)} for i, row in enumerate(front)]


def _row(row: dict) -> dict:
    return {"arch": json.loads(row["arch"]), "val_loss": float(row["loss"]), "params": int(float(row["params"])),
            "flops": int(float(row["flops"]))}


def export_all(out: Path, run: Path, chosen: list[dict]) -> None:
    from supernet import export
    for c in chosen:
        folder = out / "exports" / c["name"]
        if not (folder / "config.json").exists():
            export(run, c["arch"], folder, overwrite=True, calib_batches=1)


def tokens_per_second(out: Path, chosen: list[dict], args) -> None:
    """Median tokens/s of each merged export over interleaved rounds (forward of ``batch x seq_len`` ids)."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    models = {c["name"]: _merged(out / "exports" / c["name"] / "merged", args.random_weights).to(device).eval()
              for c in chosen}
    ids = torch.randint(0, 100, (args.batch, args.seq_len), generator=torch.Generator().manual_seed(0)).to(device)
    times = {name: [] for name in models}
    with torch.inference_mode():
        for name, model in models.items():
            for _ in range(3):
                model(input_ids=ids, use_cache=False)
        for r in range(7):
            for name in np.random.default_rng([args.seed, r]).permutation(list(models)):
                model, reps = models[name], 5
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(reps):
                    model(input_ids=ids, use_cache=False)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append((time.perf_counter() - start) / reps)
    for c in chosen:
        c["tokens_per_s"] = args.batch * args.seq_len / float(np.median(times[c["name"]]))


def _merged(folder: Path, random_weights: bool):
    from search_spaces.llm_lora.loader import build_subnet_model, load_subnet
    if not random_weights:
        return load_subnet(folder)
    from transformers import AutoConfig
    torch.manual_seed(0)
    return build_subnet_model(AutoConfig.from_pretrained(folder))


def summarise(chosen: list[dict]) -> dict:
    largest, median = chosen[0], chosen[2]
    front = [c for c in chosen if c["name"].startswith("front")]
    dominating = [c["name"] for c in front if c["val_loss"] <= median["val_loss"] and c["params"] <= median["params"]
                  and (c["val_loss"] < median["val_loss"] or c["params"] < median["params"])]
    for c in chosen:
        c["speedup"] = c["tokens_per_s"] / largest["tokens_per_s"]
        c["loss_increase_pct"] = 100 * (c["val_loss"] / largest["val_loss"] - 1)
    fast = [c for c in front if c["speedup"] >= 1.3 and c["loss_increase_pct"] <= 2.0]
    best_fast = max(fast, key=lambda c: c["speedup"], default=None)
    return {"front_dominates_median": bool(dominating), "dominating_median": dominating,
            "speed_target_met": best_fast is not None, "fastest_within_2pct": best_fast and best_fast["name"]}


def versus_plain(largest: dict, plain: dict) -> dict:
    """The largest subnet's share of plain LoRA's improvement over the base: ``(base - largest) / (base - plain)``."""
    share = (plain["base_val_loss"] - largest["val_loss"]) / (plain["base_val_loss"] - plain["val_loss"])
    return {"share_of_plain_improvement": share, "quality_target_met": share >= 0.95}


def step_seconds(run: Path) -> float:
    """Median seconds per optimizer step of a training run, from its log (the first step left out)."""
    log = [json.loads(line) for line in open(run / "log.jsonl") if '"loss/' in line]
    return float(np.median([b["time"] - a["time"] for a, b in zip(log[1:], log[2:])]))


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.stage == "all":
        torch.set_num_threads(args.threads)
        code, docs = corpora(out)
        base = base_model(args, out, code, docs)
        run = supernet_run(args, out, base, docs)
        plain_lora(args, out, base, docs)
        search = search_run(args, out, run)
        chosen = subnets(search)
        export_all(out, run, chosen)
        (out / "subnets.json").write_text(json.dumps(chosen, indent=1))
    chosen = json.loads((out / "subnets.json").read_text())
    plain = json.loads((out / "plain_lora.json").read_text())
    tokens_per_second(out, chosen, args)
    saved = json.loads((out / "supernet" / "config.json").read_text())["train"]
    result = {"device": args.device, "threads": args.threads, "batch": args.batch, "seq_len": args.seq_len,
              "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
              "schedule": {k: saved.get(k) for k in ("sampling", "num_random", "distill_weight", "warm_largest",
                                                      "label_smoothing", "kd", "steps")},
              "supernet_s_per_step": step_seconds(out / "supernet"), "plain_lora": plain,
              **versus_plain(chosen[0], plain), "subnets": chosen, **summarise(chosen),
              "seconds": round(time.time() - t0, 1)}
    Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out_json).write_text(json.dumps(result, indent=1))
    print(f"{'subnet':<9} {'val loss':>8} {'params':>9} {'tok/s':>9} {'speed':>6} {'dloss%':>7}")
    for c in chosen:
        print(f"{c['name']:<9} {c['val_loss']:8.4f} {c['params']:9d} {c['tokens_per_s']:9.0f} {c['speedup']:6.2f} "
              f"{c['loss_increase_pct']:7.2f}")
    print(f"plain LoRA: base {plain['base_val_loss']:.4f} -> {plain['val_loss']:.4f}; largest subnet "
          f"{chosen[0]['val_loss']:.4f}: {100 * result['share_of_plain_improvement']:.1f} % of plain LoRA's improvement "
          f"(target >= 95 %); {result['supernet_s_per_step']:.2f} vs {plain['s_per_step']:.2f} s/step")
    print(f"front dominates median: {result['front_dominates_median']} {result['dominating_median']}")
    print(f">= 1.3x tokens/s within 2 % loss: {result['speed_target_met']} ({result['fastest_within_2pct']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
