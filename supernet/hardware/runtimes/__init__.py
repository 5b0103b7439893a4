"""Deployment runtimes as latency targets: each module here builds a subnet in one runtime's own
format and times it with that runtime (OpenVINO IR on CPU, ExecuTorch ``.pte`` with XNNPACK, ONNX
Runtime int8). :mod:`supernet.hardware.timers` stays the one registry naming the targets; these
modules are imported lazily, only when their target is used, and each says in one line which extra
installs its runtime when it is missing (:func:`missing`)."""
from __future__ import annotations

import importlib


def missing(package: str, target: str, extra: str | None) -> str | None:
    """One line naming the extra when ``package`` cannot be imported, else None."""
    try:
        importlib.import_module(package)
    except ImportError:
        fix = f"pip install 'supernet[{extra}]'" if extra else f"pip install {package}"
        return f"target {target!r} needs {package}, which is not installed here: {fix}"
    return None


def calibration_batches(x, n: int = 8, seed: int = 0) -> list:
    """``n`` float32 numpy batches shaped like ``x`` drawn from a seeded generator: the calibration set
    of a latency measurement (int8 speed depends on the graph, not on the values calibrated on; the
    accuracy of an int8 model is calibrated on the user's data instead, see
    :mod:`supernet.evaluation.int8`)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(x.shape, generator=gen).numpy() for _ in range(n)]
