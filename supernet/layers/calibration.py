"""Batch-norm recalibration with exact averages over a fixed set of batches."""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from .elastic import ElasticBatchNorm


def _bn_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, ElasticBatchNorm))]


@torch.no_grad()
def calibrate_bn(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                 batches: Iterable[torch.Tensor]) -> None:
    """Reset every BN layer's running statistics and recompute them over ``batches``.

    With ``momentum=None`` BN keeps the cumulative average, so after ``n`` batches
    ``running_mean = (1/n) sum_b mean_b`` and ``running_var = (1/n) sum_b var_b`` (unbiased):
    an exact average, not an EMA. The model is left in eval mode.
    """
    layers = _bn_layers(model)
    if not layers:
        model.eval()
        return  # nothing to recalibrate (e.g. a transformer with layer norms)
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.eval()  # dropout stays off and draws no random numbers
    for m in layers:
        m.train()
    try:
        for x in batches:
            forward(x)
    finally:
        for m, momentum in zip(layers, saved):
            m.momentum = momentum
        model.eval()
