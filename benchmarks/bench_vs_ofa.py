"""`supernet train` side by side with OFA's own OFAMobileNetV3: the same sandwich, resolution and batch.

Both sides train the ``ofa`` space (OFA MobileNetV3 w1.0: ks {3,5,7}, e {3,4,6}, d {2,3,4}) at one
fixed resolution, with the same 4 archs per step (largest on the labels, smallest and 2 random
distilled from it by KL, the archs of ``supernet.training.sampling.step_archs`` for seed and step),
SGD with gradient clipping at 5, in fp32 and in bf16 autocast + channels-last:

- **OFA**: ``ofa``'s ``OFAMobileNetV3`` (the registry's ``ofa`` package; it imports torchvision's
  transforms at import time, so this script puts an import-only stand-in for ``torchvision`` into
  its own process before importing it, ``tests/support/ofa_stub.py``: nothing of torchvision runs, and it is never a dependency of
  the project), ``set_active_subnet(ks, e, d)`` per arch, on one fixed batch already on the device
  (the model's step alone, as OFA's harness was timed);
- **ours**: ``supernet.train`` itself (what ``supernet train`` runs), reading a packed folder of
  JPEGs (``supernet data pack``) with its data loader, from the per-step times of its log.

Each side and precision runs in its own process (peak memory is per process: CUDA's
``max_memory_allocated``, or on CPU the process's peak resident set, which includes Python and
torch themselves). Writes JSON with ms/step and peak memory of both, and ours / OFA.
Targets on one GPU (224 px, batch 128): ours <= 0.5x OFA's fp32 step and <= 0.8x OFA's bf16 step.

    pip install --no-deps ofa        # once, into the environment that runs this script
    python -m benchmarks.bench_vs_ofa --device cuda --size 224 --batch 128 --steps 30 --out benchmarks/results/bench_vs_ofa_h200.json
    python -m benchmarks.bench_vs_ofa --device cpu --size 64 --batch 8 --steps 6 --warmup 2 --threads 2   # a CPU check
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

PRECISIONS = {"fp32": ("fp32", False), "bf16-channels-last": ("bf16", True)}
TARGETS = {"fp32": 0.5, "bf16-channels-last": 0.8}
VARIANT = "ofa-bench"  # the ofa variant at one resolution, registered in this process only


def fixed_variant(size: int, classes: int):
    """Register ``ofa`` at the single resolution ``size`` (and ``classes`` outputs) as :data:`VARIANT`."""
    from search_spaces.mobilenet import VARIANTS
    from supernet.core.registry import get_space
    get_space("mobilenet").variants[VARIANT] = replace(VARIANTS["ofa"], resolutions=(size,), num_classes=classes,
                                                       dropout=0.0)
    return get_space("mobilenet").build_space(get_space("mobilenet").variants[VARIANT])


def import_ofa():
    """``OFAMobileNetV3``, through the import-only torchvision stand-in of ``tests/support/ofa_stub.py``."""
    from tests.support.ofa_stub import import_ofa as stand_in_import
    try:
        return stand_in_import().OFAMobileNetV3
    except ImportError as exc:
        raise SystemExit(f"error: {exc}") from None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_ofa(args, precision: str, channels_last: bool) -> dict:
    """OFA's supernet, our sandwich's archs, one fixed device batch; median seconds per step after warm-up."""
    from supernet.core.losses import kl_divergence
    from supernet.training.sampling import step_archs
    OFAMobileNetV3 = import_ofa()
    space, device = fixed_variant(args.size, args.classes), torch.device(args.device)
    torch.manual_seed(0)
    net = OFAMobileNetV3(n_classes=args.classes, dropout_rate=0.0, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                         depth_list=[2, 3, 4]).to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=3e-5)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    times = []
    net.train()
    for step in range(args.steps):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        teacher = None
        for arch in step_archs(space, "sandwich", 2, 0, step):
            net.set_active_subnet(ks=[k or 3 for k in arch["ks"]], e=[e or 3 for e in arch["e"]], d=list(arch["d"]))
            with autocast:
                out = net(x)
            if teacher is None:
                loss, teacher = torch.nn.functional.cross_entropy(out.float(), y, label_smoothing=0.1), out.detach()
            else:
                loss = kl_divergence(out.float(), teacher.float())[0]
            loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"ms_per_step": 1e3 * statistics.median(times[args.warmup:]), "peak_memory_mib": peak_memory_mib(device),
            "what": "OFAMobileNetV3 step on a fixed device batch"}


def run_ours(args, precision: str, channels_last: bool) -> dict:
    """`supernet.train` (the `supernet train` loop, its packed-data loader included) on the same archs."""
    from supernet.api import train
    from supernet.training.train_config import TrainConfig
    fixed_variant(args.size, args.classes)
    cfg = TrainConfig(data=f"packed:{args.packed}", variant=VARIANT, batch_size=args.batch, steps=args.steps,
                      device=args.device, precision=precision, channels_last=channels_last, data_workers=0,
                      checkpoint_every=0, calib_batches=1, tensorboard=False, progress=False, warmup_steps=1,
                      threads=args.threads, lr=0.01, label_smoothing=0.1, kd="kl", num_random=2)
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, Path(tmp) / "run")
        rows = [json.loads(line) for line in open(run / "log.jsonl")]
    stamps = [r["time"] for r in sorted((r for r in rows if "loss/largest" in r), key=lambda r: r["step"])]
    return {"ms_per_step": 1e3 * statistics.median(np.diff(stamps[args.warmup:])),
            "peak_memory_mib": peak_memory_mib(torch.device(args.device)),
            "what": "supernet.train on packed data (loader, sandwich, KD, clip, optimizer, logging)"}


def make_packed(root: Path, size: int, count: int, classes: int) -> Path:
    """``count`` random RGB JPEGs a little larger than ``size``, packed at their native size."""
    from PIL import Image

    from supernet.api import pack_data
    folder, rng = root / "jpegs", np.random.default_rng(0)
    for i in range(count):
        cls = folder / "train" / f"c{i % classes}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size + size // 7, size + size // 5, 3), dtype=np.uint8)).save(
            cls / f"{i}.jpg", quality=90)
    pack_data(folder, root / "packed", 2 * size, workers=min(8, os.cpu_count() or 1), progress=False)
    return root / "packed"


def child(args) -> None:
    torch.set_num_threads(args.threads)
    precision, channels_last = PRECISIONS[args.precision]
    result = (run_ofa if args.side == "ofa" else run_ours)(args, precision, channels_last)
    Path(args.result).write_text(json.dumps(result))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=224, help="input resolution of every arch (default: %(default)s)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="steps per run (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=5, help="steps not counted (default: %(default)s)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS), default=list(PRECISIONS))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_vs_ofa.json"))
    p.add_argument("--side", choices=["ofa", "ours"], help=argparse.SUPPRESS)  # a child process's part
    p.add_argument("--packed", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--precision", choices=sorted(PRECISIONS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        child(args)
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda needs a CUDA GPU, and torch sees none here; run with --device cpu for a small check")
    if args.steps <= args.warmup + 1:
        p.error("--steps must exceed --warmup by at least 2")
    import_ofa()  # a missing package fails here, before anything runs
    out = {"device": args.device, "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
           "size": args.size, "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
           "classes": args.classes, "targets_ours_over_ofa": TARGETS, "results": {}}
    if args.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name()
    else:
        out["note"] = ("a CPU run checks that both sides run end to end; the targets are for one GPU at 224 px, "
                       "batch 128 (CPU bf16 has no matrix units here, and the machine may be shared)")
    with tempfile.TemporaryDirectory() as tmp:
        packed = make_packed(Path(tmp), args.size, max(2 * args.batch, 64), min(args.classes, 10))
        for precision in args.precisions:
            row = {}
            for side in ("ofa", "ours"):
                result = Path(tmp) / f"{side}-{precision}.json"
                cmd = [sys.executable, "-m", "benchmarks.bench_vs_ofa", "--side", side, "--precision", precision, "--packed", str(packed),
                       "--result", str(result), *(f"--{k}={getattr(args, k)}" for k in
                                                   ("device", "size", "batch", "steps", "warmup", "classes", "threads"))]
                done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
                if done.returncode:
                    print(done.stderr, file=sys.stderr)
                    return done.returncode
                row[side] = json.loads(result.read_text())
            row["ours_over_ofa_step"] = row["ours"]["ms_per_step"] / row["ofa"]["ms_per_step"]
            row["target_met"] = row["ours_over_ofa_step"] <= TARGETS[precision] if args.device == "cuda" else None
            out["results"][precision] = row
            print(f"{args.device} {precision:19s} OFA {row['ofa']['ms_per_step']:8.1f} ms/step "
                  f"({row['ofa']['peak_memory_mib']:7.0f} MiB)  supernet train {row['ours']['ms_per_step']:8.1f} ms/step "
                  f"({row['ours']['peak_memory_mib']:7.0f} MiB)  ours/OFA {row['ours_over_ofa_step']:.2f} "
                  f"(target <= {TARGETS[precision]})")
    from supernet.io.files import atomic_write_json
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
