"""Per-target clocks: how one module is run and timed on each latency target.

A timer is ``timer(module, x, cfg, onnx_path) -> list[float]``: per-call seconds of ``module`` on
the batch ``x`` (``cfg.warmup`` untimed calls first, then at least ``cfg.repeats`` timed ones). The
real timers, one per target:

- ``cpu``: PyTorch eager, ``cfg.threads`` threads, wall clock;
- ``onnxruntime-cpu``: the ONNX export in ONNX Runtime's CPU execution provider;
- ``cuda``: PyTorch eager on the GPU, timed by CUDA events around each call;
- ``cuda-graph``: the forward captured once as a CUDA graph and replayed (no Python, no per-kernel
  launch cost: how a latency-critical PyTorch deployment runs a static network), CUDA events;
- ``ort-cuda``: ONNX Runtime's CUDA execution provider (``onnxruntime-gpu``), input and output bound
  on the GPU (I/O binding) so the host copy is not timed;
- ``ort-tensorrt``: ONNX Runtime's TensorRT execution provider (``onnxruntime-gpu`` + ``tensorrt``),
  engine built in the warm-up, I/O bound on the GPU;
- ``onnxruntime-cpu-int8``: the ONNX export quantised to int8 (static, QDQ), ONNX Runtime's CPU provider;
- ``openvino-cpu`` / ``openvino-cpu-int8``: the ONNX export read by OpenVINO (int8: NNCF's post-training
  quantisation), compiled for its CPU plugin (:mod:`supernet.hardware.runtimes.openvino`);
- ``executorch-xnnpack``: a ``.pte`` program lowered with the XNNPACK delegate, run by ExecuTorch's
  runtime (:mod:`supernet.hardware.runtimes.executorch`).

The runtimes are optional extras (``pip install 'supernet[openvino]'``, ``supernet[executorch]``);
a target whose runtime is missing is refused in one line naming its extra.

:func:`target_problem` says in one line why a target cannot run here (no GPU, the package or the
execution provider missing), or None. Any other callable with the timer signature can stand in for
the clock (:func:`supernet.hardware.rounds.measure` takes ``timer=``): a simulated machine in tests.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..core.placement import torch_threads
from .clock import ort_session, time_onnx, timed

GPU_TARGETS = ("cuda", "cuda-graph", "ort-cuda", "ort-tensorrt")
RUNTIME_TARGETS = {"onnxruntime-cpu-int8": (("onnxruntime",), None), "openvino-cpu": (("openvino",), "openvino"),
                   "openvino-cpu-int8": (("openvino", "nncf"), "openvino"),
                   "executorch-xnnpack": (("executorch",), "executorch")}  # target: (packages, extra)
TARGETS = ("cpu", "onnxruntime-cpu") + tuple(RUNTIME_TARGETS) + GPU_TARGETS
INT8_TARGETS = ("onnxruntime-cpu-int8", "openvino-cpu-int8")
ORT_PROVIDERS = {"onnxruntime-cpu": "CPUExecutionProvider", "ort-cuda": "CUDAExecutionProvider",
                 "ort-tensorrt": "TensorrtExecutionProvider"}
INSTALL = {"ort-cuda": "pip install onnxruntime-gpu (in place of onnxruntime)",
           "ort-tensorrt": "pip install onnxruntime-gpu tensorrt (TensorRT's libraries must be on the loader path)"}

Timer = Callable[..., "list[float]"]  # (module, x, cfg, onnx_path) -> per-call seconds


def target_problem(target: str) -> str | None:
    """Why ``target`` cannot be measured on this machine (one line with the fix), or None when it can."""
    if target in GPU_TARGETS and not torch.cuda.is_available():
        return (f"target {target!r} needs a CUDA GPU, and none is visible here; use --target cpu or "
                "onnxruntime-cpu, or run on a GPU machine")
    if target in RUNTIME_TARGETS:
        from .runtimes import missing
        packages, extra = RUNTIME_TARGETS[target]
        return next(filter(None, (missing(p, target, extra) for p in packages)), None)
    provider = ORT_PROVIDERS.get(target)
    if provider is None:
        return None
    try:
        import onnxruntime
    except ImportError:
        return f"target {target!r} needs ONNX Runtime, which is not installed: pip install onnxruntime"
    offered = onnxruntime.get_available_providers()
    if provider not in offered:
        return (f"target {target!r} needs ONNX Runtime's {provider}, and this onnxruntime "
                f"{onnxruntime.__version__} offers only {offered}: {INSTALL.get(target, 'reinstall onnxruntime')}")
    return None


def needs_file(target: str) -> bool:
    """Whether ``target``'s clock writes a model file (ONNX, IR, ``.pte``) and so needs a path."""
    return target not in ("cpu",) + GPU_TARGETS[:2]


def time_torch(module, x, cfg, onnx_path: Path | None = None) -> list[float]:
    with torch_threads(cfg.threads), torch.inference_mode():
        for _ in range(cfg.warmup):
            module(x)
        return timed(lambda: module(x), cfg)


def _events_timed(call, cfg) -> list[float]:
    """Per-call seconds of ``call()`` on the current CUDA stream, from CUDA events (at least
    ``repeats`` calls, more until ``min_seconds`` of GPU time)."""
    times, total = [], 0.0
    while len(times) < cfg.repeats or (total < cfg.min_seconds and len(times) < 100 * cfg.repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
        total += times[-1]
    return times


def time_cuda(module, x, cfg, onnx_path: Path | None = None) -> list[float]:
    module, x = module.cuda(), x.cuda()
    with torch.inference_mode():
        for _ in range(cfg.warmup):
            module(x)
        torch.cuda.synchronize()
        return _events_timed(lambda: module(x), cfg)


def time_cuda_graph(module, x, cfg, onnx_path: Path | None = None) -> list[float]:
    """The forward captured as one CUDA graph (after 3 eager calls on a side stream, as PyTorch's
    capture rules ask), then ``graph.replay()`` timed."""
    module, x = module.cuda(), x.cuda()
    with torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                module(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            module(x)
        for _ in range(cfg.warmup):
            graph.replay()
        torch.cuda.synchronize()
        return _events_timed(graph.replay, cfg)


def time_onnx_gpu(module, x, cfg, onnx_path: Path, provider: str) -> list[float]:
    """ONNX Runtime on the GPU with I/O binding: the input lives on the GPU, the output stays there;
    each timed call is ``run_with_iobinding`` plus the wait for its outputs."""
    import onnxruntime as ort
    session = ort_session(module, x, cfg, Path(onnx_path), provider)
    binding = session.io_binding()
    value = ort.OrtValue.ortvalue_from_numpy(x.numpy(), "cuda", 0)
    binding.bind_ortvalue_input(session.get_inputs()[0].name, value)
    for out in session.get_outputs():
        binding.bind_output(out.name, "cuda", 0)

    def call():
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
    for _ in range(max(cfg.warmup, 3 if provider == "TensorrtExecutionProvider" else 0)):
        call()
    return timed(call, cfg)


def real_timer(target: str) -> Timer:
    """The clock of ``target``."""
    if target == "cpu":
        return time_torch
    if target == "cuda":
        return time_cuda
    if target == "cuda-graph":
        return time_cuda_graph
    if target == "onnxruntime-cpu-int8":
        from .runtimes.ort_int8 import time_ort_int8
        return time_ort_int8
    if target.startswith("openvino-cpu"):
        from .runtimes.openvino import time_openvino
        int8 = target.endswith("int8")
        return lambda module, x, cfg, path: time_openvino(module, x, cfg, path, int8)
    if target == "executorch-xnnpack":
        from .runtimes.executorch import time_executorch
        return time_executorch
    provider = ORT_PROVIDERS[target]
    if target == "onnxruntime-cpu":
        return lambda module, x, cfg, path: time_onnx(module, x, cfg, path, provider)
    return lambda module, x, cfg, path: time_onnx_gpu(module, x, cfg, path, provider)
