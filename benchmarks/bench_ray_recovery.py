"""Benchmark: how long a 2-worker Ray Train run takes to recover a SIGKILLed worker, on this machine as
it is and with extra busy processes (a user's oversubscribed node). Issue 32's question: does
recovery stall when the machine is loaded, or is it only slow?

Each case: the run of tests/distributed/test_ray.py's ``killed_run`` (tiny 1-D supernet, 2 workers of one thread,
24 steps, a checkpoint every 4); one worker is killed once step 10 is logged. Read from the run's
``log.jsonl`` and the clock: seconds from the kill to the restarted workers' ``workers-started``
line, to the first step logged after it, and to the end; the 1-minute load average before and after.
``--busy N`` adds N processes spinning ``while True: pass`` from just before the kill to the end of
that case (then killed). ``--worker-niceness`` is the Ray workers' niceness: 0, what the engine's local
instance uses (``supernet.distributed.cluster.LOCAL_SYSTEM_CONFIG``), or 15, Ray's own default, under which
busy processes of niceness 0 leave the workers a few percent of a core. ``--append`` adds the cases to those
already in ``--out``.

    python -m benchmarks.bench_ray_recovery --busy 0 6       # writes benchmarks/results/bench_ray_recovery.json
    python -m benchmarks.bench_ray_recovery --busy 6 --worker-niceness 15 --append
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import RESULTS
from supernet.distributed.cluster import LOCAL_SYSTEM_CONFIG
from supernet.io.files import atomic_write_json


def one_case(busy: int, folder: Path, niceness: int) -> dict:
    import numpy as np
    import psutil

    from supernet import ScaleConfig, TrainConfig, train
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    t = np.linspace(0, 1, 20)
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t[None]) + 0.3 * rng.standard_normal((2000, 20))
    np.savez(folder / "toy.npz", x=x.astype(np.float32), y=y)
    cfg = TrainConfig(data=str(folder / "toy.npz"), variant="tiny", steps=24, batch_size=32, lr=0.05, warmup_steps=2,
                      checkpoint_every=4, calib_batches=1, tensorboard=False, progress=False, seed=3)
    out, done, spinners = folder / f"run-busy{busy}", {}, []
    try:
        load_start = os.getloadavg()[0]
        started = time.time()
        thread = threading.Thread(target=lambda: done.update(run=train(cfg, out, scale=ScaleConfig(2))), daemon=True)
        thread.start()
        log = out / "log.jsonl"
        while thread.is_alive() and max(_steps(log), default=-1) < 10:
            time.sleep(0.05)
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        time.sleep(2 if busy else 0)  # the spinners are running: the recovery happens under their load
        load_before = os.getloadavg()[0]
        workers = [p for p in psutil.Process().children(recursive=True) if "RayTrainWorker" in " ".join(p.cmdline())]
        killed_at = time.time()
        workers[-1].kill()
        thread.join(1200)
        ended = time.time()
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        restart = [r for r in rows if r.get("event") == "workers-started"][1:]
        after = [r for r in rows if "loss/largest" in r and restart and r["time"] > restart[0]["time"]]
        return {"busy_processes": busy, "worker_niceness": niceness, "load1_at_start": round(load_start, 2), "load1_at_kill": round(load_before, 2), "load1_after": round(os.getloadavg()[0], 2),
                "finished": "run" in done, "steps_logged": len([r for r in rows if "loss/largest" in r]),
                "seconds_to_kill": round(killed_at - started, 1),
                "kill_to_workers_restarted_s": round(restart[0]["time"] - killed_at, 1) if restart else None,
                "restarted_from_step": restart[0]["from_step"] if restart else None,
                "kill_to_first_step_after_s": round(after[0]["time"] - killed_at, 1) if after else None,
                "kill_to_end_s": round(ended - killed_at, 1)}
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def _steps(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [json.loads(line)["step"] for line in log.read_text().splitlines()
            if line.endswith("}") and '"loss/largest"' in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 8], help="extra busy processes per case")
    parser.add_argument("--out", default=str(RESULTS / "bench_ray_recovery.json"))
    parser.add_argument("--append", action="store_true", help="keep the cases already in --out")
    parser.add_argument("--worker-niceness", type=int, default=LOCAL_SYSTEM_CONFIG["worker_niceness"],
                        help="the Ray workers' niceness (default: the engine's, 0; Ray's own default is 15)")
    args = parser.parse_args()
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             _system_config={**LOCAL_SYSTEM_CONFIG, "worker_niceness": args.worker_niceness})
    cases = json.loads(Path(args.out).read_text())["cases"] if args.append and Path(args.out).exists() else []
    try:
        for busy in args.busy:
            with tempfile.TemporaryDirectory() as tmp:
                cases.append(one_case(busy, Path(tmp), args.worker_niceness))
                print(json.dumps(cases[-1]), flush=True)
    finally:
        ray.shutdown()
        atomic_write_json(args.out, {"machine": f"{os.cpu_count()} CPUs (shared with other jobs)",
                                     "time": time.strftime("%Y-%m-%d %H:%M:%S"), "cases": cases})


if __name__ == "__main__":
    main()
