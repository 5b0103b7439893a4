"""Latency on a named hardware target: measurement in interleaved rounds, device fingerprints.

Targets (:mod:`supernet.hardware.timers`): ``cpu`` (PyTorch eager, thread count fixed and
recorded), ``onnxruntime-cpu`` (the ONNX export of the module; ``-int8`` quantised), ``openvino-cpu``
(``-int8``), ``executorch-xnnpack``, ``cuda`` (eager, CUDA events),
``cuda-graph`` (a captured CUDA graph replayed), ``ort-cuda`` and ``ort-tensorrt`` (ONNX
Runtime's CUDA and TensorRT execution providers), always on a static module (an extracted
subnet or one table unit), never on the sliced supernet.

A measurement runs ``warmup`` calls, then ``repeats`` timed calls, and reports the
median, p10 and p90 (and the 10%-trimmed mean) in milliseconds. A call is one forward of an example
batch (``mode="forward"``), or, for a subnet that generates text (an LLM's, with ``prefill`` and
``decode``: :mod:`supernet.hardware.generation`), a prompt of ``prefill`` tokens then ``decode``
new tokens with the KV cache (``mode="generate"``; prefill and per-token decode times reported too). Modules are measured in
interleaved rounds (:func:`measure_many`; ``rounds``, or ``unit_rounds`` for the units of
a table): a shared machine drifts over seconds (load on other tenants, clock changes), and
a module timed in one spell would carry that spell's speed; timed once per round, in a
fresh order each round, it gets the median of its round medians instead; the spread of those
round medians, ``spread_ms = [p10, p90]`` and ``spread = (max - min) / median`` (the same arch
measured again), says how far one measurement can be trusted.

``statistic`` picks what a round contributes and what tables, predictors and fronts use
(``latency_ms``, read with :func:`latency_ms`): ``p10`` (default) the round's 10th-percentile call, or
``median`` its median call (the default before 2026-12-08; ``median_ms`` is recorded either way). On a
shared or throttling machine a call is slowed only by interference, never sped up, so the fast tail is the
device's own speed: on the 2-core development VM the same 30 ONNX Runtime int8 subnets measured twice agreed
to 0.6 % (median over archs) by p10 and 1.6 % by median, from the same timings (Kendall tau 0.963 vs 0.926),
an eager BERT's to 5.9 % vs 9.2 % (``benchmarks/bench_latency_statistic.py``); an eager BERT's table plus
correction met the latency targets by p10 (3.0 % MAPE) and missed them by median (5.3 %) with the same
rounds. Build a table and time the nets it is checked against with the same statistic (the table's device
profile names it).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..core.errors import SupernetError
from .generation import generation_summary, time_generation
from .timers import GPU_TARGETS, TARGETS, Timer, needs_file, real_timer, target_problem

MODES = ("forward", "generate")
STATISTICS = ("median", "p10")


@dataclass(frozen=True)
class MeasureConfig:
    target: str = "cpu"
    threads: int = 2
    batch: int = 1
    warmup: int = 10
    repeats: int = 50
    min_seconds: float = 0.1  # per round, time at least this long: small nets get more repeats
    rounds: int = 3  # interleaved rounds of measure_many (and measure_subnet)
    unit_rounds: int = 7  # rounds for a table's units: one block's timing is more placement-sensitive than a net's
    mode: str = "forward"  # or "generate": prefill + decode with the KV cache (LLM subnets)
    prefill: int = 128  # generate: prompt tokens
    decode: int = 32  # generate: new tokens
    statistic: str = "p10"  # or "median": what a round contributes (see the module docstring)

    def check(self) -> None:
        if self.target not in TARGETS:
            raise SupernetError(f"unknown latency target {self.target!r}; targets are {list(TARGETS)}")
        problem = target_problem(self.target)
        if problem:
            raise SupernetError(problem)
        if self.statistic not in STATISTICS:
            raise SupernetError(f"--statistic must be one of {list(STATISTICS)}, got {self.statistic!r}")
        if self.mode not in MODES:
            raise SupernetError(f"--latency-mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.mode == "generate" and (self.target not in ("cpu", "cuda") or self.prefill < 1 or self.decode < 1):
            raise SupernetError("--latency-mode generate runs on the cpu or cuda target, with --prefill-tokens and "
                                "--decode-tokens >= 1")
        if self.threads < 1 or self.repeats < 3 or self.warmup < 0 or min(self.rounds, self.unit_rounds) < 1:
            raise SupernetError("--threads must be >= 1, --repeats >= 3, --warmup >= 0, --rounds and --unit-rounds >= 1")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


ADDED_LATER = ("cpu_kernels",)  # fingerprint keys a table stored before they existed may lack (then unchecked)


def fingerprint(cfg: MeasureConfig) -> dict:
    """What a latency depends on besides the network: device, threads, library versions, and on a CPU target
    the vector kernels PyTorch dispatches to (``cpu_kernels``: AVX512, AVX2, ... as
    ``ATEN_CPU_CAPABILITY`` or the CPU decides; VMs of different CPUs often share one model name)."""
    fp = {"target": cfg.target, "cpu": cpu_model(), "cores": os.cpu_count(), "threads": cfg.threads,
          "batch": cfg.batch, "torch": torch.__version__, "machine": platform.machine()}
    if cfg.target not in GPU_TARGETS:
        fp["cpu_kernels"] = torch.backends.cpu.get_cpu_capability()
    if cfg.statistic != "median":  # median tables, built before the statistic existed, keep their profile
        fp["statistic"] = cfg.statistic
    if cfg.target.startswith(("onnxruntime", "ort-")):
        import onnxruntime
        fp["onnxruntime"] = onnxruntime.__version__
    fp.update(runtime_versions(cfg.target))
    if cfg.target in ("cuda", "cuda-graph", "ort-cuda", "ort-tensorrt"):
        fp["gpu"] = torch.cuda.get_device_name(0)
    if cfg.target == "ort-tensorrt":
        import tensorrt
        fp["tensorrt"] = tensorrt.__version__
    return fp


def runtime_versions(target: str) -> dict:
    """Versions of the deployment runtime a target runs on (OpenVINO, NNCF, ExecuTorch), if any."""
    from importlib.metadata import version
    packages = {"openvino-cpu": ["openvino"], "openvino-cpu-int8": ["openvino", "nncf"],
                "executorch-xnnpack": ["executorch"]}.get(target, [])
    return {name: version(name) for name in packages}


def fingerprint_id(fp: dict) -> str:
    return hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:10]


def summarise(times_s: list[float]) -> dict:
    """Median, p10, p90 and 10%-trimmed mean in ms of per-call times in seconds."""
    ms = np.sort(np.asarray(times_s) * 1e3)
    cut = int(len(ms) * 0.1)
    trimmed = ms[cut:len(ms) - cut] if len(ms) > 2 * cut else ms
    return {"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90)), "trimmed_mean_ms": float(trimmed.mean()), "repeats": len(ms)}


def measure(module: torch.nn.Module, input_shape: tuple[int, ...] | torch.Tensor, cfg: MeasureConfig,
            onnx_path: Path | None = None, timer: Timer | None = None) -> dict:
    """Latency of ``module`` on one batch of shape ``(cfg.batch, *input_shape)`` (one round), or on
    ``input_shape`` itself when it is a tensor (an example batch: token ids, say).

    ONNX Runtime targets export the module to ``onnx_path`` when it is missing and reuse it when
    present (so later rounds skip the export). ``timer`` replaces the target's clock
    (:mod:`supernet.hardware.timers`), e.g. a simulated machine in tests.
    """
    if timer is None:
        cfg.check()
        timer = real_timer(cfg.target)
    module = module.eval()
    if isinstance(input_shape, torch.Tensor):
        x = input_shape
    else:
        x = torch.randn((cfg.batch,) + tuple(input_shape))
    if cfg.mode == "generate":
        return generation_summary(time_generation(module, x, cfg), cfg.decode, summarise)
    if onnx_path is not None or not needs_file(cfg.target):
        return summarise(timer(module, x, cfg, onnx_path))
    with tempfile.TemporaryDirectory() as tmp:
        return summarise(timer(module, x, cfg, Path(tmp) / "m.onnx"))


Job = tuple[Callable[[], torch.nn.Module], "tuple[int, ...] | torch.Tensor"]  # (build, input shape or example)


def measure_many(jobs: Sequence[Job], cfg: MeasureConfig, progress: bool = False, desc: str = "latency",
                 seed: int = 0, rounds: int | None = None, timer: Timer | None = None) -> list[dict]:
    """Latency of every job, measured in ``rounds`` (default ``cfg.rounds``) interleaved rounds.

    Round ``k`` times every job once, in the order ``default_rng([seed, k]).permutation``;
    a job's result is :func:`combine_rounds` of its round results. Modules are rebuilt each
    round (nothing large is held); ONNX files are exported once. ``timer``: see :func:`measure`.
    """
    if timer is None:
        cfg.check()
    rounds = rounds or cfg.rounds
    per_job: list[list[dict]] = [[] for _ in jobs]
    bar = tqdm(total=len(jobs) * rounds, desc=desc, unit="net", disable=not progress or None, leave=False)
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            for i in np.random.default_rng([seed, k]).permutation(len(jobs)):
                build, shape = jobs[i]
                per_job[i].append(measure(build(), shape, cfg, Path(tmp) / f"{i}.onnx", timer=timer))
                bar.update(1)
    bar.close()
    return [combine_rounds(results, cfg.statistic) for results in per_job]


def combine_rounds(results: list[dict], statistic: str = "median") -> dict:
    """One result from per-round results: medians of their statistics (those every round has), repeats
    summed, and each round's ``statistic`` (``round_ms``: its median or p10 call) with their median
    ``latency_ms`` and spread: ``spread_ms = [p10, p90]`` and ``spread = (max - min) / median`` (0 for one
    round)."""
    keys = [k for k, v in results[0].items() if k != "repeats" and isinstance(v, float)]
    out = {key: float(np.median([r[key] for r in results])) for key in keys}
    values = [float(r[f"{statistic}_ms"]) for r in results]
    middle = float(np.median(values))
    relative = (max(values) - min(values)) / max(1e-12, middle)
    return {**out, "latency_ms": middle, "statistic": statistic, "repeats": int(sum(r["repeats"] for r in results)),
            "rounds": len(results), "round_ms": values, "spread_ms": spread(values), "spread": relative}


def latency_ms(result: dict) -> float:
    """The latency a measurement stands for: ``latency_ms`` (its statistic), else ``median_ms`` (a single
    round, or a result stored before the statistic existed)."""
    return float(result["latency_ms"] if "latency_ms" in result else result["median_ms"])


def spread(values_ms) -> list[float]:
    """``[p10, p90]`` of a set of measurements (linear interpolation between order statistics)."""
    return [float(np.percentile(values_ms, 10)), float(np.percentile(values_ms, 90))]


def measure_subnet(space, arch, cfg: MeasureConfig, timer: Timer | None = None) -> dict:
    """Latency of ``arch``'s static subnet (fresh weights; latency does not depend on their values)."""
    return measure_subnets(space, [arch], cfg, timer=timer)[0]


def measure_subnets(space, archs, cfg: MeasureConfig, progress: bool = False, desc: str = "latency",
                    rounds: int | None = None, timer: Timer | None = None) -> list[dict]:
    """Latencies of the archs' static subnets, measured in interleaved rounds (:func:`measure_many`)."""
    jobs = [(lambda a=arch: space.build_static(a), _example(space, arch, cfg.batch)) for arch in archs]
    return measure_many(jobs, cfg, progress, desc, rounds=rounds, timer=timer)


def _example(space, arch, batch: int):
    """The input shape for a space with float inputs (a fresh random batch each call), else the space's
    own example batch (e.g. token ids), drawn once with a fixed seed."""
    x = space.example_input(arch, 1, torch.Generator().manual_seed(0))
    if x.is_floating_point():
        return space.input_shape(arch)
    return space.example_input(arch, batch, torch.Generator().manual_seed(0))


def repeatability(first: dict, second: dict) -> float:
    """Relative difference of two latencies (:func:`latency_ms`): ``|a - b| / min(a, b)``."""
    a, b = latency_ms(first), latency_ms(second)
    return abs(a - b) / max(1e-12, min(a, b))

