"""LLM supernet cost at a real model's shape: time per step and peak memory vs plain PEFT LoRA.

A Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864, tied
embeddings) with random weights and a 4,096-token BPE tokenizer trained on Python's docs (random
weights are fine for time and memory), saved once under ``OUT/model-<shape>`` in sharded
safetensors. Each measurement runs in its own process (its peak RSS is its own):

- ``train``: plain LoRA (stock ``peft``, rank 32 on q/k/v/o/gate/up/down, AdamW) and ``supernet
  train --space llm_lora`` (the space's default schedule), batch ``--batch`` x 128 tokens, for a
  fp32 and a bf16 base, with and without gradient checkpointing: peak RSS (``--memory-steps``
  steps, each in its own process);
- ``time``: the same two in one process, their steps interleaved (plain, ours, plain, ...) on the
  same batches for ``--steps`` steps each: on a machine shared with other jobs, both see the same
  load, so the ratio of their median seconds per step holds where separate runs drift;
- ``eval``: ``supernet eval RUN --arch largest`` and ``export``: ``supernet export RUN --arch
  median``: peak RSS against the base's weight bytes.

Targets (issue 22): time per step <= 2.0x plain LoRA's; peak training memory <= 1.1x plain LoRA's;
eval / export peak <= 1.3x the base's weight bytes plus activations (``import_rss``: the process
with torch and transformers imported, before any model, is reported beside it).

With ``--device cuda`` (a GPU machine), ``--shapes 1b,7b --base-dtypes bf16`` measure the same at
Llama-3.2-1B and Mistral-7B shapes (peak GPU memory instead of RSS) plus the merged subnet's
generation speed (prefill and decode tokens/s with the KV cache).

    python -m benchmarks.bench_llm_scale --threads 2                     # CPU, 0.5B shape (about an hour on 2 cores)
    python -m benchmarks.bench_llm_scale --device cuda --shapes 1b,7b --base-dtypes bf16 \\
        --out-json benchmarks/results/bench_llm_scale_cuda.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import REPO

SHAPES = {  # hidden, layers, heads, kv heads, MLP, tied embeddings, model type
    "0.5b": dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, tie=True, kind="qwen2"),
    "1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, intermediate=8192, tie=True, kind="llama"),
    "7b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, intermediate=14336, tie=False, kind="mistral"),
    "tiny": dict(hidden=64, layers=4, heads=4, kv_heads=2, intermediate=192, tie=True, kind="qwen2"),  # smoke test
}
VOCAB, SEQ = 4096, 128


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/llm-scale", help="work folder (default: %(default)s)")
    p.add_argument("--out-json", default="benchmarks/results/bench_llm_scale.json")
    p.add_argument("--shapes", default="0.5b", help="comma-separated of " + ", ".join(SHAPES))
    p.add_argument("--base-dtypes", default="fp32,bf16")
    p.add_argument("--checkpointing", default="0,1", help="gradient checkpointing off (0) and / or on (1)")
    p.add_argument("--steps", type=int, default=5, help="optimizer steps of each, interleaved, for the time ratio")
    p.add_argument("--memory-steps", type=int, default=2, help="optimizer steps of each peak-memory run")
    p.add_argument("--memory-repeats", type=int, default=3, help="processes per peak-memory figure (the median is "
                   "reported: a process's peak RSS varies by up to ~15 %% between identical runs)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--stages", default="memory,time,inference", help="memory and time (of training; train: both), "
                   "inference (eval, export, generation); what is not measured is kept from --out-json "
                   "(default: %(default)s)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- the model folder -------------------------------------------------------------------------
def model_folder(out: Path, shape: str, dtype: str) -> Path:
    """A random-weight model of ``shape`` with a 4k BPE tokenizer, stored in ``dtype`` (as a user's model is stored
    in the dtype it is used in; loading another dtype costs a transient copy of the file), sharded safetensors."""
    import torch
    import transformers
    folder = out / f"model-{shape}-{dtype}"
    if (folder / "config.json").exists():
        return folder
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    first = next((p for p in sorted(out.glob(f"model-{shape}-*")) if (p / "config.json").exists()), None)
    if first is not None:  # the same weights in another dtype
        tmp = folder.with_name(folder.name + ".tmp")
        transformers.AutoModelForCausalLM.from_pretrained(first, dtype=torch_dtype).save_pretrained(
            tmp, max_shard_size="500MB")
        transformers.AutoTokenizer.from_pretrained(first).save_pretrained(tmp)
        os.replace(tmp, folder)
        return folder
    from benchmarks.bench_llm import corpora
    from search_spaces.llm_lora.testing import train_tokenizer
    from supernet.data.text import read_documents
    _, docs = corpora(out)
    tokenizer = train_tokenizer(read_documents(docs, "text"), VOCAB)
    s = SHAPES[shape]
    cls = {"qwen2": "Qwen2Config", "llama": "LlamaConfig", "mistral": "MistralConfig"}[s["kind"]]
    config = getattr(transformers, cls)(
        vocab_size=len(tokenizer), hidden_size=s["hidden"], intermediate_size=s["intermediate"],
        num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"],
        max_position_embeddings=4096, tie_word_embeddings=s["tie"])
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp, max_shard_size="500MB")
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, folder)
    return folder


# -- one measurement, in its own process ---------------------------------------------------------
def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb(device: str) -> float:
    import torch
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(job: dict) -> dict:
    import peft  # noqa: F401  (everything a job imports is in the import baseline)
    import torch
    import transformers  # noqa: F401

    import search_spaces.llm_lora.export  # noqa: F401
    import search_spaces.llm_lora.model  # noqa: F401
    import supernet.api  # noqa: F401
    torch.set_num_threads(job["threads"])
    base_rss = rss_mb()
    result = {"import_rss_mb": base_rss}
    if job["kind"] == "train":
        result.update(train_job(job))
    elif job["kind"] == "time":
        result.update(time_job(job))
    elif job["kind"] == "eval":
        from supernet import evaluate
        start = time.perf_counter()
        row = evaluate(job["run"], "largest", splits=("val",), calib_batches=1, device=job["device"])[0]
        result.update(val_loss=row["val_loss"], seconds=time.perf_counter() - start)
    elif job["kind"] == "export":
        from supernet import export
        start = time.perf_counter()
        export(job["run"], "median", job["dest"], overwrite=True, calib_batches=1)
        result.update(seconds=time.perf_counter() - start)
    elif job["kind"] in ("hf_forward", "peft_forward"):
        result.update(hf_forward_job(job))
    elif job["kind"] == "generate":
        result.update(generate_job(job))
    result["peak_mb"] = peak_mb(job["device"])
    return result


def train_config(job: dict):
    from supernet import TrainConfig
    return TrainConfig(space="llm_lora", variant="default", data=f"text:{job['docs']}", val_fraction=0.02,
                      space_options={"model": job["model"], "seq_len": SEQ, "base_dtype": job["base_dtype"],
                                     "gradient_checkpointing": bool(job["checkpointing"])},
                      batch_size=job["batch"], optimizer="adamw", lr=2e-3, weight_decay=0.0, warmup_steps=1,
                      steps=job["steps"], checkpoint_every=0, calib_batches=1, threads=job["threads"],
                      device=job["device"], progress=False, tensorboard=False)


def train_job(job: dict) -> dict:
    import torch
    cfg = train_config(job)
    if job["method"] == "plain":
        from benchmarks.llm_plain_lora import peft_model, train_plain

        from supernet.data.load import load_data
        data = load_data(cfg.data, val_fraction=cfg.val_fraction, seed=0,
                         reader={"tokenizer": job["model"], "seq_len": SEQ, "text_field": "text"})
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[job["base_dtype"]]
        model = peft_model(job["model"], 32, 64.0, dtype, bool(job["checkpointing"])).to(job["device"])
        batches = ((x.to(job["device"]), y.to(job["device"])) for x, y in data.train_batches(0, job["batch"], 0))
        times = train_plain(model, batches, job["steps"], cfg)
    else:
        from supernet import train
        run = train(cfg, job["run"], overwrite=True)
        log = [json.loads(line) for line in open(Path(run) / "log.jsonl") if '"loss/' in line]
        times = [b["time"] - a["time"] for a, b in zip(log, log[1:])]
    times = sorted(times[1:] if len(times) > 2 else times)  # the first step allocates and warms up
    return {"s_per_step": times[len(times) // 2], "step_times": times}


def time_job(job: dict) -> dict:
    """Seconds per optimizer step of plain LoRA and of the supernet, interleaved step by step on the same batches."""
    import numpy as np
    import torch
    from benchmarks.llm_plain_lora import PlainTrainer, peft_model

    from supernet.training.setup import build_setup, prepare_model, resolved_config
    from supernet.training.trainer import Trainer
    cfg = resolved_config(train_config(job))
    placement = cfg.placement()
    setup = build_setup(cfg, placement)
    prepare_model(setup, cfg, 0)
    ours = Trainer(setup.model, setup.task, cfg, placement, job["steps"])
    ours.model.train()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[job["base_dtype"]]
    plain = PlainTrainer(peft_model(job["model"], 32, 64.0, dtype, bool(job["checkpointing"])).to(job["device"]),
                         cfg, job["steps"])
    batches = setup.data.train_batches(0, cfg.batch_size, cfg.seed)
    times = {"plain": [], "ours": []}
    for step in range(job["steps"]):
        x, y = next(batches)
        times["plain"].append(plain.step(x, y)[0])
        start = time.perf_counter()
        ours.step(x, y, step)
        times["ours"].append(time.perf_counter() - start)
    med = {k: float(np.median(v[1:] if len(v) > 2 else v)) for k, v in times.items()}
    return {"plain_s_per_step": med["plain"], "ours_s_per_step": med["ours"], "time_ratio": med["ours"] / med["plain"],
            "step_times": times, "schedule": {k: getattr(cfg, k) for k in ("sampling", "num_random", "distill_weight")}}


def hf_forward_job(job: dict) -> dict:
    """The anchors of eval's memory: stock ``transformers`` (no adapters; ``hf_forward``) or stock PEFT LoRA
    (``peft_forward``) loading the same base and computing the loss of the run's validation split in the
    batches eval uses."""
    import torch
    import transformers

    from search_spaces.llm_lora.model import eval_batch_for
    from supernet.data.load import load_data
    cfg = train_config(job)
    data = load_data(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed,
                     reader={"tokenizer": job["model"], "seq_len": SEQ, "text_field": "text"})
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[job["base_dtype"]]
    if job["kind"] == "peft_forward":  # with stock PEFT's adapters (fp32 over the base, as ours)
        from benchmarks.llm_plain_lora import peft_model
        hf = peft_model(job["model"], 32, 64.0, dtype).eval()
    else:
        hf = transformers.AutoModelForCausalLM.from_pretrained(job["model"], dtype=dtype).eval()
    batch = eval_batch_for(SEQ, hf.config.vocab_size)  # as supernet eval batches
    start, losses = time.perf_counter(), []
    with torch.no_grad():
        for x, _ in data.eval_batches("val", batch):
            losses.append(float(hf(input_ids=x, labels=x).loss))
    return {"val_loss_unadapted": sum(losses) / max(1, len(losses)), "seconds": time.perf_counter() - start,
            "eval_batch": batch}


def generate_job(job: dict) -> dict:
    """Prefill and decode tokens/s of the exported merged subnet (random weights are fine for speed)."""
    import torch

    from search_spaces.llm_lora.loader import CausalLMLogits, load_subnet
    from supernet.hardware.rounds import MeasureConfig, measure
    net = CausalLMLogits(load_subnet(Path(job["dest"]) / "merged", dtype=torch.bfloat16))
    ids = torch.randint(0, 1000, (1, job["prefill"]), generator=torch.Generator().manual_seed(0))
    cfg = MeasureConfig(target="cuda" if job["device"].startswith("cuda") else "cpu", threads=job["threads"],
                        mode="generate", prefill=job["prefill"], decode=job["decode"], warmup=1, repeats=5)
    timed = measure(net, ids, cfg)
    return {"prefill_tokens_per_s": job["prefill"] / timed["prefill_ms"] * 1e3,
            "decode_tokens_per_s": 1e3 / timed["decode_ms_per_token"], **timed}


def spawn(job: dict) -> dict:
    """Run ``job`` in a fresh process; its result (one JSON line)."""
    cmd = [sys.executable, "-m", "benchmarks.bench_llm_scale", "--worker", json.dumps(job)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"job {job} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# -- the benchmark ----------------------------------------------------------------------------------
def bench_shape(args, out: Path, shape: str) -> dict:
    dtypes = args.base_dtypes.split(",")
    folders = {dtype: model_folder(out, shape, dtype).resolve() for dtype in dtypes}
    docs = out / "docs.jsonl"
    common = dict(threads=args.threads, device=args.device, docs=str(docs.resolve()), batch=args.batch,
                  steps=args.steps)
    rows, ckpts = [], [int(c) for c in args.checkpointing.split(",")]
    stages = set(args.stages.replace("train", "memory,time").split(","))
    for dtype in dtypes if stages & {"memory", "time"} else ():
        for ckpt in ckpts:
            row = {"base_dtype": dtype, "checkpointing": bool(ckpt)}
            for method in ("plain", "ours") if "memory" in stages else ():
                run = out / f"run-{shape}-{dtype}-{ckpt}"
                job = {**common, "kind": "train", "method": method, "base_dtype": dtype, "checkpointing": ckpt,
                       "run": str(run), "model": str(folders[dtype]), "steps": args.memory_steps}
                runs = [spawn(job) for _ in range(args.memory_repeats)]
                peaks = sorted(r["peak_mb"] for r in runs)
                row[method] = {**runs[0], "peak_mb": peaks[(len(peaks) - 1) // 2], "peak_mb_runs": peaks}
                print(f"{shape} {dtype} ckpt={ckpt} {method}: peak {peaks} MB", flush=True)
            if "time" in stages:
                row["time"] = spawn({**common, "kind": "time", "base_dtype": dtype, "checkpointing": ckpt,
                                     "model": str(folders[dtype]), "run": str(out / "run-time")})
                print(f"{shape} {dtype} ckpt={ckpt}: {row['time']['ours_s_per_step']:.2f} vs "
                      f"{row['time']['plain_s_per_step']:.2f} s/step = {row['time']['time_ratio']:.2f}x", flush=True)
            rows.append(row)
    params = stored_params(folders[dtypes[0]])
    inference = []
    for dtype in dtypes if "inference" in stages else ():
        run = out / f"run-{shape}-{dtype}-{ckpts[0]}"  # a trained run of this base dtype
        base_mb = params * {"fp32": 4, "bf16": 2, "fp16": 2}[dtype] / 2**20
        for kind in ("hf_forward", "peft_forward", "eval", "export"):
            res = spawn({**common, "kind": kind, "run": str(run), "dest": str(out / f"export-{shape}-{dtype}"),
                         "model": str(folders[dtype]), "base_dtype": dtype, "checkpointing": 0})
            res.update(kind=kind, base_dtype=dtype, base_weight_mb=base_mb,
                       peak_over_weights=res["peak_mb"] / base_mb,
                       peak_above_imports_over_weights=(res["peak_mb"] - res["import_rss_mb"]) / base_mb)
            for name in ("hf_forward", "peft_forward"):
                anchor = next((r for r in inference if r["kind"] == name and r["base_dtype"] == dtype), None)
                if anchor is not None and kind not in ("hf_forward", "peft_forward"):
                    res[f"peak_over_{name}"] = res["peak_mb"] / anchor["peak_mb"]
            inference.append(res)
            print(f"{shape} {dtype} {kind}: peak {res['peak_mb']:.0f} MB = {res['peak_over_weights']:.2f}x weights "
                  f"({res['peak_above_imports_over_weights']:.2f}x above the import baseline)", flush=True)
        if args.device.startswith("cuda"):
            res = spawn({**common, "kind": "generate", "dest": str(out / f"export-{shape}-{dtype}"),
                         "prefill": 512, "decode": 128, "model": str(folders[dtype])})
            inference.append({"kind": "generate", "base_dtype": dtype, **res})
    return {"shape": shape, **SHAPES[shape], "params": params, "training": rows, "inference": inference}


def stored_params(folder: Path) -> int:
    """Parameters in the model folder's safetensors (a tied LM head is stored once, as in memory)."""
    from safetensors import safe_open
    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), "pt") as fh:
            for key in fh.keys():
                n = 1
                for d in fh.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


def merged(result: dict, previous: dict | None) -> dict:
    """``result`` with the rows of ``previous``'s same shape that this run did not measure (another
    stage, base dtype or checkpointing), so a partial rerun updates the JSON in place."""
    old = next((r for r in (previous or {}).get("shapes", []) if r["shape"] == result["shape"]), None)
    if old is None:
        return result
    keys = {"training": lambda r: (r["base_dtype"], r["checkpointing"]), "inference": lambda r: (r["kind"], r["base_dtype"])}
    for part, key in keys.items():
        rows = {key(r): r for r in old.get(part, [])}
        for r in result[part]:
            rows[key(r)] = {**rows.get(key(r), {}), **r}  # a partial rerun replaces only what it measured
        result[part] = sorted(rows.values(), key=lambda r: [str(v) for v in key(r)])
    return result


def with_ratios(result: dict) -> dict:
    """Each training row's ``time_ratio`` (ours / plain median s/step, interleaved) and ``memory_ratio``
    (ours / plain median peak over ``--memory-repeats`` processes)."""
    for row in result["training"]:
        if "time" in row:
            row["time_ratio"] = row["time"]["time_ratio"]
        if "plain" in row and "ours" in row:
            row["memory_ratio"] = row["ours"]["peak_mb"] / row["plain"]["peak_mb"]
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = [bench_shape(args, out, shape) for shape in args.shapes.split(",")]
    previous = json.loads(Path(args.out_json).read_text()) if Path(args.out_json).exists() else None
    results = [with_ratios(merged(r, previous)) for r in results]
    import platform

    import torch
    doc = {"device": args.device, "threads": args.threads, "batch": args.batch, "seq_len": SEQ, "steps": args.steps,
           "memory_steps": args.memory_steps,
           "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "note": "shared 2-core machine: ratios are side by side in one run", "shapes": results,
           "seconds": round(time.time() - t0, 1)}
    Path(args.out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out_json).write_text(json.dumps(doc, indent=1))
    for r in results:
        for row in r["training"]:
            print(f"{r['shape']} base {row['base_dtype']} ckpt {row['checkpointing']}: time {row['time_ratio']:.2f}x "
                  f"plain LoRA (target <= 2.0), peak memory {row['memory_ratio']:.2f}x (target <= 1.1)")
        for row in r["inference"]:
            if row["kind"] != "generate":
                anchor = (f", {row['peak_over_hf_forward']:.2f}x stock transformers' and "
                          f"{row['peak_over_peft_forward']:.2f}x stock PEFT's forward" if "peak_over_peft_forward" in row else "")
                print(f"{r['shape']} {row['kind']} base {row['base_dtype']}: peak {row['peak_over_weights']:.2f}x the "
                      f"weights, {row['peak_above_imports_over_weights']:.2f}x above imports{anchor} "
                      "(target <= 1.3 + activations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
