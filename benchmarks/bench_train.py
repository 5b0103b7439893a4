"""Training throughput: the bare training step vs the real `supernet train` loop, fp32 vs bf16.

For each case (a data set, a space variant, a batch size) and each precision it measures

- **bare step**: :meth:`Trainer.step` (the sandwich's archs, KD, clip, optimizer) on one fixed
  batch already on the device; images/s = batch / median step time;
- **real loop**: ``supernet.train`` with data loading (in-memory arrays or an image folder
  streamed by loader processes), from the per-step times it logs, after ``--warmup`` steps;

and reports loop / bare (the share of the step's speed the input pipeline keeps) and
bf16 / fp32 step time. CUDA cases run when a GPU is visible (224 px ``ofa`` at batch 128 on a
generated folder of JPEGs and on its pack, with channels-last); CPU cases always.

**Loader alone** (``loader`` in the JSON): images/s of ``train_batches`` with no training, for a
folder of JPEGs (decoded by ``--data-workers`` loader processes) and for the same images packed
by ``supernet data pack`` at their native size (augmented in batch on the device; on CUDA each
batch is waited for). On CPU the folder is the 5,000 MNIST digits upscaled to 64 px JPEGs
(``benchmarks/make_imagefolder.py --format jpg``), read at the ``mnist`` variant's 28 px; on CUDA the
224 px random JPEGs. Target: packed >= 3x the JPEG folder on CPU.

``--compare-with PATH`` also times `train()` runs (3 x ``--steps`` steps) of the checkout at
PATH against this one (same config, subprocesses, interleaved rounds; the median time between
logged steps): the CPU "no slower than before" check.

Examples::

    python -m benchmarks.bench_train                                   # CPU cases (+ CUDA if visible)
    python -m benchmarks.bench_train --compare-with /tmp/old-checkout  # and the old code's train() side by side
    python -m benchmarks.bench_train --steps 12 --out benchmarks/results/bench_train_quick.json
    python -m benchmarks.bench_train --loader-only --threads 2          # JPEG folder vs packed, loader alone
    python -m benchmarks.bench_train --devices cuda --out benchmarks/results/bench_train_cuda_h200.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from supernet.api import train  # noqa: E402
from supernet.core.registry import build_supernet, get_space, space_config  # noqa: E402
from supernet.core.task import make_task  # noqa: E402
from supernet.data.load import load_data  # noqa: E402
from supernet.io.files import atomic_write_json  # noqa: E402
from supernet.training.train_config import TrainConfig, with_space_defaults
from supernet.training.trainer import Trainer  # noqa: E402


def cases(device: str, folder_for, packed_for=None) -> list[dict]:
    if device == "cuda":
        return [dict(name="ofa-224-imagefolder", data=f"imagefolder:{folder_for(224, 2048)}", variant="ofa",
                     batch=128, channels_last=True, data_workers=12),
                dict(name="ofa-224-packed", data=f"packed:{packed_for(folder_for(224, 2048), 256)}", variant="ofa",
                     batch=128, channels_last=True, data_workers=0)]
    return [dict(name="mnist1d-arrays", data="mnist1d", variant="mnist1d", batch=128, channels_last=False,
                 data_workers=0),
            dict(name="mnist-28-imagefolder", data=f"imagefolder:{folder_for(28, 600)}", variant="mnist",
                 batch=64, channels_last=False, data_workers=2)]


def config(case: dict, device: str, precision: str, steps: int) -> TrainConfig:
    return with_space_defaults(TrainConfig(
        data=case["data"], variant=case["variant"], batch_size=case["batch"], steps=steps, device=device,
        precision=precision, channels_last=case["channels_last"], data_workers=case["data_workers"],
        checkpoint_every=0, calib_batches=1, tensorboard=False, progress=False, warmup_steps=1))


def bare_step(cfg: TrainConfig, steps: int, warmup: int) -> float:
    """Median seconds of one Trainer.step on a fixed device batch (on CUDA, after one untimed pass over the
    same steps: the real loop then sees the same archs, whose kernels are loaded by then)."""
    data = load_data(cfg.data, seed=cfg.seed, workers=cfg.data_workers)
    torch.manual_seed(0)
    model = build_supernet("mobilenet", space_config("mobilenet", cfg.variant, in_channels=data.in_channels,
                                                     num_classes=data.num_classes))
    data.set_image_size(int(model.space.input_shape(model.space.largest())[-1]))
    placement = cfg.placement()
    x, y = next(data.train_batches(0, cfg.batch_size, cfg.seed))
    x, y = placement.input(x), placement.target(y)
    trainer = Trainer(model, make_task(get_space("mobilenet").task, label_smoothing=0.1), cfg, placement, steps)
    if placement.device.type == "cuda":  # first sight of each arch's shapes loads / compiles its kernels: not timed
        for step in range(steps):
            trainer.step(x, y, step)
    times = []
    for step in range(steps):
        _sync(placement.device)
        start = time.perf_counter()
        trainer.step(x, y, step)
        _sync(placement.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def real_loop(cfg: TrainConfig, warmup: int) -> float:
    """Median seconds per step of a real `train()` run (data loading included), from its step log."""
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, Path(tmp) / "run")
        rows = [json.loads(line) for line in open(run / "log.jsonl")]
    stamps = [r["time"] for r in sorted((r for r in rows if "loss/largest" in r), key=lambda r: r["step"])]
    return statistics.median(np.diff(stamps[warmup:]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pack(folder: Path, size: int) -> Path:
    """``folder`` packed by `supernet data pack` beside it (shorter side <= ``size``)."""
    from supernet.api import pack_data
    out = folder.parent / f"{folder.name}-packed-{size}"
    if not out.exists():
        pack_data(folder, out, size, workers=min(8, os.cpu_count() or 1), progress=False)
    return out


def mnist_jpegs(root: Path, size: int = 64) -> Path:
    """The 5,000 MNIST digits as ``size`` px JPEGs (benchmarks/make_imagefolder.py --format jpg)."""
    from benchmarks.make_imagefolder import make
    folder = root / f"mnist-jpg-{size}"
    if not folder.exists():
        make(folder, size=size, fmt="jpg")
    return folder


def loader_rate(data, batch: int, steps: int, warmup: int, device: torch.device) -> float:
    """Images/s of ``data.train_batches`` alone (after ``warmup`` batches; CUDA batches waited for)."""
    batches = data.train_batches(0, batch, seed=0)
    for _ in range(warmup):
        next(batches)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        x, _ = next(batches)
        x.sum().item() if device.type == "cuda" else None  # noqa: B018  (waits for the batch's kernels)
    _sync(device)
    seconds = time.perf_counter() - start
    batches.close()
    return steps * batch / seconds


def loader_case(device: str, root: Path, folder_for, steps: int, warmup: int, workers: int) -> dict:
    """JPEG folder vs its pack, the loader alone, side by side: 3 interleaved rounds (folder, pack, folder,
    pack, ...), the median of each and the ratio of medians (the per-round ratios are kept too)."""
    if device == "cuda":
        folder, size, batch, native = folder_for(224, 2048), 224, 128, 256
    else:
        folder, size, batch, native = mnist_jpegs(root), 28, 128, 64
    packed = pack(folder, native)
    dev = torch.device(device)
    rates = {"jpeg": [], "packed": []}
    for _ in range(3):
        jpeg = load_data(f"imagefolder:{folder}", workers=workers, pin_memory=device == "cuda")
        fast = load_data(f"packed:{packed}", device=dev)
        for key, data in (("jpeg", jpeg), ("packed", fast)):
            data.set_image_size(size)
            rates[key].append(loader_rate(data, batch, steps, warmup, dev))
    jpeg_rate, packed_rate = statistics.median(rates["jpeg"]), statistics.median(rates["packed"])
    return {"device": device, "folder": str(folder.name), "images": jpeg.split_size("train"), "size": size,
            "batch": batch, "workers": workers, "steps": steps, "jpeg_images_per_s": jpeg_rate,
            "packed_images_per_s": packed_rate, "packed_over_jpeg": packed_rate / jpeg_rate, "rounds": rates,
            "round_ratios": [p / j for p, j in zip(rates["packed"], rates["jpeg"])]}


def make_folder(root: Path, size: int, count: int) -> Path:
    """``count`` random RGB JPEGs (10 classes) at ``size`` px plus 10% val, for a data-loading benchmark."""
    from PIL import Image
    folder = root / f"images-{size}"
    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", max(10, count // 10))):
        for i in range(n):
            cls = folder / split / f"c{i % 10}"
            cls.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (size + size // 7, size + size // 5, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(cls / f"{i}.jpg", quality=90)
    return folder


def _step_seconds(path: str, steps: int) -> float:
    """Median seconds per step of a default-recipe `train()` (MNIST-1D, fp32, CPU, 2 threads) of the
    checkout at ``path``, from the step times in its ``log.jsonl`` (the first 4 steps not counted)."""
    code = ("import json,statistics,tempfile;from supernet.training import TrainConfig,train;"
            f"cfg=TrainConfig(steps={steps},checkpoint_every=0,tensorboard=False,progress=False,threads=2);"
            "d=tempfile.mkdtemp();train(cfg,d+'/r');"
            "t=[r['time'] for r in map(json.loads,open(d+'/r/log.jsonl')) if 'time' in r][4:];"
            "print(statistics.median(b-a for a,b in zip(t,t[1:])))")
    env = {**os.environ, "PYTHONPATH": path}
    # cwd=path: `python -c` puts the working directory first on sys.path, ahead of PYTHONPATH
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=path, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def compare_train(other: str, rounds: int, steps: int) -> dict:
    """Seconds per training step of the real loop, here and at ``other``: each round runs `train()`
    for ``steps`` steps in both checkouts, interleaved; a run's figure is the median time between
    logged steps (data loading, arch sampling and logging included; setup and evaluation not)."""
    per_step = {key: [] for key in ("this", "other")}
    for _ in range(rounds):
        for key, path in (("this", str(REPO)), ("other", other)):
            per_step[key].append(_step_seconds(path, steps))
    this, old = statistics.median(per_step["this"]), statistics.median(per_step["other"])
    return {"other": other, "steps": steps, "rounds": rounds, "this_step_s": this, "other_step_s": old,
            "ratio": this / old, "per_step": per_step}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=24, help="steps per measurement (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=4, help="steps not counted (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--compare-with", help="another checkout whose train() is timed side by side")
    p.add_argument("--compare-rounds", type=int, default=3)
    p.add_argument("--compare-only", action="store_true", help="skip the throughput cases (keep theirs in --out)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_train.json"))
    p.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], help="only these devices (default: cpu, and cuda "
                   "when visible)")
    p.add_argument("--loader-only", action="store_true", help="only the loader comparison (JPEG folder vs packed)")
    p.add_argument("--loader-steps", type=int, default=30, help="batches timed per loader measurement")
    p.add_argument("--data-workers", type=int, help="JPEG loader processes in the loader comparison (default: 2 on "
                   "CPU, 12 on CUDA)")
    args = p.parse_args(argv)
    if args.steps <= args.warmup + 2:
        p.error("--steps must exceed --warmup by at least 3")
    torch.set_num_threads(args.threads)
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" in devices and not torch.cuda.is_available():
        p.error("--devices cuda needs a CUDA GPU, and torch sees none here")
    results = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
               "torch": torch.__version__, "cases": []}
    if torch.cuda.is_available():
        results["gpu"] = torch.cuda.get_device_name()
    old = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    if args.compare_only or args.loader_only:  # keep what this run does not measure again
        results["cases"] = old.get("cases", [])
    if not args.compare_with and "compare" in old:
        results["compare"] = old["compare"]
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        folder_for = lambda size, n: folders.setdefault(size, make_folder(Path(tmp), size, n))  # noqa: E731
        results["loader"] = old.get("loader", []) if args.compare_only else []
        for device in [] if args.compare_only else devices:
            workers = args.data_workers or (12 if device == "cuda" else 2)
            row = loader_case(device, Path(tmp), folder_for, args.loader_steps, 3, workers)
            results["loader"].append(row)
            print(f"{device:4s} loader alone ({row['folder']}, {row['size']} px, batch {row['batch']}): JPEG folder "
                  f"{row['jpeg_images_per_s']:8.1f} img/s ({workers} workers), packed {row['packed_images_per_s']:8.1f} "
                  f"img/s: {row['packed_over_jpeg']:.1f}x")
        for device in [] if args.compare_only or args.loader_only else devices:
            for case in cases(device, folder_for, pack):
                row = {"case": case["name"], "device": device, "batch": case["batch"]}
                for precision in ("fp32", "bf16"):
                    cfg = config(case, device, precision, args.steps)
                    bare, loop = bare_step(cfg, args.steps, args.warmup), real_loop(cfg, args.warmup)
                    row[precision] = {"bare_step_s": bare, "loop_step_s": loop,
                                      "bare_images_per_s": case["batch"] / bare,
                                      "loop_images_per_s": case["batch"] / loop, "loop_over_bare": bare / loop}
                row["bf16_over_fp32_step"] = row["bf16"]["bare_step_s"] / row["fp32"]["bare_step_s"]
                results["cases"].append(row)
                print(f"{device:4s} {case['name']:22s} batch {case['batch']:3d}  "
                      + "  ".join(f"{p}: step {row[p]['bare_images_per_s']:7.1f} img/s, loop "
                                  f"{row[p]['loop_images_per_s']:7.1f} img/s ({row[p]['loop_over_bare']:.2f})"
                                  for p in ("fp32", "bf16")) + f"  bf16/fp32 step {row['bf16_over_fp32_step']:.2f}")
    if args.compare_with:
        results["compare"] = compare_train(args.compare_with, args.compare_rounds, 3 * args.steps)
        c = results["compare"]
        print(f"train() loop: this {c['this_step_s'] * 1e3:.0f} ms/step, {c['other']} {c['other_step_s'] * 1e3:.0f} "
              f"ms/step, ratio {c['ratio']:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
