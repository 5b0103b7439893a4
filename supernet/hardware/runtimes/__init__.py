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
    """``n`` numpy batches shaped like ``x`` drawn from a seeded generator (float32 normal values; for integer
    ``x``, token ids, its own values shuffled): the calibration set
    of a latency measurement (int8 speed depends on the graph, not on the values calibrated on; the
    accuracy of an int8 model is calibrated on the user's data instead, see
    :mod:`supernet.evaluation.int8`)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    if not x.is_floating_point():  # token ids: the example's own ids, shuffled (every one valid for the model)
        flat = x.reshape(-1)
        return [flat[torch.randperm(flat.numel(), generator=gen)].reshape(x.shape).numpy() for _ in range(n)]
    return [torch.randn(x.shape, generator=gen).numpy() for _ in range(n)]


def typical_activations(module, x, n: int = 16, seed: int = 0):
    """``module`` with the activation ranges of a trained network, for an int8 timing: every BatchNorm's
    running statistics recomputed on ``n`` seeded inputs like ``x`` (:func:`calibration_batches`, one batch
    of ``n``; a cumulative average, as OFA recalibrates an extracted subnet), then eval mode.

    A static subnet is timed with fresh weights, and BatchNorm's initial statistics (mean 0, variance 1) let
    its activations shrink layer by layer: a random MobileNet's int8 activation scales reached 1e-9. Speed
    does not depend on the weights' values in fp32, but an int8 runtime's does on those ranges: ONNX Runtime
    ran such models 2-3x slower than the recalibrated ones, and up to 19 % differently from one random build of
    the same arch to the next. A module without BatchNorm is returned unchanged (LayerNorm needs nothing)."""
    import numpy as np
    import torch
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return module
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batches
    batch = torch.from_numpy(np.concatenate(calibration_batches(x[:1], n, seed)))
    module.train()
    with torch.no_grad():
        module(batch)
    return module.eval()
