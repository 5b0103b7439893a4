"""Latency on a named hardware target: measurement, device fingerprints, lookup tables.

Targets: ``cpu`` (PyTorch eager, thread count fixed and recorded), ``onnxruntime-cpu``
(the ONNX export of the module) and ``cuda`` (synchronised CUDA events), always on a
static module (an extracted subnet or one table unit), never on the sliced supernet.

A measurement runs ``warmup`` calls, then ``repeats`` timed calls, and reports the
median and p90 (and the 10%-trimmed mean) in milliseconds.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import SupernetError

TARGETS = ("cpu", "onnxruntime-cpu", "cuda")


@dataclass(frozen=True)
class MeasureConfig:
    target: str = "cpu"
    threads: int = 2
    batch: int = 1
    warmup: int = 10
    repeats: int = 50
    min_seconds: float = 0.2  # time at least this long: small nets get more repeats

    def check(self) -> None:
        if self.target not in TARGETS:
            raise SupernetError(f"unknown latency target {self.target!r}; targets are {list(TARGETS)}")
        if self.target == "cuda" and not torch.cuda.is_available():
            raise SupernetError("target 'cuda' needs a CUDA GPU, and none is visible here; use --target cpu")
        if self.threads < 1 or self.repeats < 3 or self.warmup < 0:
            raise SupernetError("--threads must be >= 1, --repeats >= 3 and --warmup >= 0")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint(cfg: MeasureConfig) -> dict:
    """What a latency depends on besides the network: device, threads, library versions."""
    fp = {"target": cfg.target, "cpu": _cpu_model(), "cores": os.cpu_count(), "threads": cfg.threads,
          "batch": cfg.batch, "torch": torch.__version__, "machine": platform.machine()}
    if cfg.target == "onnxruntime-cpu":
        import onnxruntime
        fp["onnxruntime"] = onnxruntime.__version__
    if cfg.target == "cuda":
        fp["gpu"] = torch.cuda.get_device_name(0)
    return fp


def fingerprint_id(fp: dict) -> str:
    return hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:10]


def summarise(times_s: list[float]) -> dict:
    """Median, p90 and 10%-trimmed mean in ms of per-call times in seconds."""
    ms = np.sort(np.asarray(times_s) * 1e3)
    cut = int(len(ms) * 0.1)
    trimmed = ms[cut:len(ms) - cut] if len(ms) > 2 * cut else ms
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "trimmed_mean_ms": float(trimmed.mean()), "repeats": len(ms)}


def measure(module: torch.nn.Module, input_shape: tuple[int, ...], cfg: MeasureConfig) -> dict:
    """Latency of ``module`` on one batch of shape ``(cfg.batch, *input_shape)``."""
    cfg.check()
    module = module.eval()
    x = torch.randn((cfg.batch,) + tuple(input_shape))
    if cfg.target == "cpu":
        return summarise(_time_torch(module, x, cfg))
    if cfg.target == "onnxruntime-cpu":
        return summarise(_time_onnx(module, x, cfg))
    return summarise(_time_cuda(module, x, cfg))


def measure_subnet(space, arch, cfg: MeasureConfig) -> dict:
    """Latency of ``arch``'s static subnet (fresh weights; latency does not depend on their values)."""
    return measure(space.build_static(arch), space.input_shape(arch), cfg)


def _timed(call, cfg: MeasureConfig) -> list[float]:
    """Per-call seconds of ``call()``: ``repeats`` calls, more until ``min_seconds`` have passed."""
    times, total = [], 0.0
    while len(times) < cfg.repeats or (total < cfg.min_seconds and len(times) < 100 * cfg.repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        total += times[-1]
    return times


def _time_torch(module, x, cfg: MeasureConfig) -> list[float]:
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with torch.inference_mode():
            for _ in range(cfg.warmup):
                module(x)
            times = _timed(lambda: module(x), cfg)
    finally:
        torch.set_num_threads(previous)
    return times


def _time_onnx(module, x, cfg: MeasureConfig) -> list[float]:
    import onnxruntime as ort
    from .exporter import export_onnx
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(module, tuple(x.shape), path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = cfg.threads, 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {"input": x.numpy()}
    for _ in range(cfg.warmup):
        session.run(None, feed)
    return _timed(lambda: session.run(None, feed), cfg)


def _time_cuda(module, x, cfg: MeasureConfig) -> list[float]:
    module, x = module.cuda(), x.cuda()
    with torch.inference_mode():
        for _ in range(cfg.warmup):
            module(x)
        torch.cuda.synchronize()
        times = []
        for _ in range(cfg.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            module(x)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    return times


def repeatability(first: dict, second: dict) -> float:
    """Relative difference of two medians: ``|a - b| / min(a, b)``."""
    a, b = first["median_ms"], second["median_ms"]
    return abs(a - b) / max(1e-12, min(a, b))

