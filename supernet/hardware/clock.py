"""The clock every latency target shares: repeated timed calls, and an ONNX Runtime session timed on its file.

Below the targets' registry (:mod:`supernet.hardware.timers`) and the runtimes
(:mod:`supernet.hardware.runtimes`), which both time with these.
"""
from __future__ import annotations

import time
from pathlib import Path


def timed(call, cfg) -> list[float]:
    """Per-call seconds of ``call()``: ``repeats`` calls, more until ``min_seconds`` have passed."""
    times, total = [], 0.0
    while len(times) < cfg.repeats or (total < cfg.min_seconds and len(times) < 100 * cfg.repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        total += times[-1]
    return times


def ort_session(module, x, cfg, path: Path, provider: str):
    import onnxruntime as ort

    from ..io.export import export_onnx
    if not path.exists():
        export_onnx(module, tuple(x.shape), path, x.dtype)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = cfg.threads, 1
    chosen = provider
    if provider == "TensorrtExecutionProvider":  # an engine per file, cached beside it: later rounds skip the build
        chosen = (provider, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(path.parent)})
    providers = [chosen] if provider == "CPUExecutionProvider" else [chosen, "CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), opts, providers=providers)
    if session.get_providers()[0] != provider:
        from ..core.errors import SupernetError
        raise SupernetError(f"ONNX Runtime could not start its {provider} (it fell back to "
                            f"{session.get_providers()}); check the CUDA / TensorRT libraries of onnxruntime-gpu")
    return session


def time_onnx(module, x, cfg, onnx_path: Path, provider: str = "CPUExecutionProvider") -> list[float]:
    session = ort_session(module, x, cfg, Path(onnx_path), provider)
    feed = {session.get_inputs()[0].name: x.numpy()}
    for _ in range(cfg.warmup):
        session.run(None, feed)
    return timed(lambda: session.run(None, feed), cfg)
