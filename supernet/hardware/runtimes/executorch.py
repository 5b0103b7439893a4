"""ExecuTorch with the XNNPACK delegate: ``torch.export`` of the module, lowered by
``to_edge_transform_and_lower`` with ``XnnpackPartitioner`` into a ``.pte`` program, loaded and run by
ExecuTorch's runtime (``executorch.runtime``), as an app on a phone runs it.

Threads: XNNPACK's thread pool is set to ``cfg.threads`` (``_unsafe_reset_threadpool``) for the run, before
the program's method is loaded and restored after it is released (a resize under a loaded method aborts).
"""
from __future__ import annotations

from pathlib import Path

EXTRA = "executorch"


def lower(module, x) -> bytes:
    """The ``.pte`` program of ``module`` on inputs shaped like ``x``, its ops delegated to XNNPACK."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    exported = torch.export.export(module.eval(), (torch.zeros_like(x),))
    return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def write_pte(module, x, path: Path) -> None:
    from ...io.files import atomic_file
    program = lower(module, x)
    with atomic_file(path) as tmp:
        Path(tmp).write_bytes(program)


def load(path: Path):
    """The ``forward`` method of a ``.pte`` file, loaded by ExecuTorch's runtime."""
    from executorch.runtime import Runtime
    return Runtime.get().load_program(str(path)).load_method("forward")


def set_threads(threads: int) -> int:
    """Resize XNNPACK's thread pool; returns the previous size."""
    from executorch.extension.pybindings import portable_lib
    previous = portable_lib._threadpool_get_thread_count()
    portable_lib._unsafe_reset_threadpool(threads)
    return previous


def time_executorch(module, x, cfg, onnx_path: Path) -> list[float]:
    """Per-call seconds of ``method.execute([x])`` (the ``.pte`` is written once beside ``onnx_path``)."""
    from ..clock import timed
    pte = Path(onnx_path).with_suffix(".pte")
    if not pte.exists():
        write_pte(module, x, pte)
    previous = set_threads(cfg.threads)  # before the method is loaded: resizing under a loaded method aborted
    try:                                 # the process (a pthread_mutex_lock assertion) at its next execute
        method = load(pte)
        for _ in range(cfg.warmup):
            method.execute([x])
        return timed(lambda: method.execute([x]), cfg)
    finally:
        method = None
        set_threads(previous)
