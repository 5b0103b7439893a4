"""Kernel counts: how many device kernels a module's forward launches, counted on the CPU.

On a GPU at small batch, eager PyTorch is launch-bound: a network's time follows the number of
kernels it launches more than its multiply-adds. :func:`count_kernels` counts the ATen operators
one forward dispatches that compute something (views, reshapes and other aliasing operators
launch nothing and are left out): one kernel each on a CUDA device in eager mode, close enough
for a latency model to learn a per-kernel cost from (a table stores the count of every unit).
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..core.placement import torch_threads


def _is_view(op) -> bool:
    """True for operators whose output aliases an input without writing (views: no kernel)."""
    schema = getattr(op, "_schema", None)
    if schema is None:
        return False
    return any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not _is_view(func):
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_kernels(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Computing ATen operators dispatched by one inference forward of ``module`` on ``x`` (eval mode)."""
    module, counter = module.eval(), _Counter()
    # a count needs no parallelism (and small ops run slower with it on a busy CPU)
    with torch_threads(1), torch.inference_mode(), counter:
        module(x)
    return counter.count
