"""Evaluate one arch: extract, recalibrate BN, then the task's score, exact FLOPs and params.

Everything runs on the placement's device and precision; the static subnet is extracted
once per arch (or the space's ``subnet_view`` of it, which copies nothing), its BN statistics
recomputed on the fixed calibration batches.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..core.arch import Arch
from ..core.contract import hook
from ..core.placement import CPU, Placement
from ..core.task import Task
from ..layers.calibration import calibrate_bn


@torch.no_grad()
def score(model: nn.Module, batches: Iterable, task: Task, prepare=lambda x: x, placement: Placement = CPU) -> float:
    """The task's score of ``model`` (eval mode) over ``batches`` of ``(x, y)``."""
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        with placement.autocast():
            outputs = model(prepare(placement.input(x)))
        t, n = task.score_terms(outputs, placement.target(y))
        total, count = total + t, count + n
    return task.score(total, count)


def calibrated_subnet(supernet: nn.Module, arch: Arch, calib: list[torch.Tensor],
                      placement: Placement = CPU) -> nn.Module:
    """The subnet of ``arch`` on the device (the space's ``subnet_view``: by default the static subnet), with BN
    statistics recomputed on ``calib``."""
    net = placement.model(hook(supernet, "subnet_view")(arch))

    def forward(x):
        with placement.autocast():
            return net(supernet.prepare_input(placement.input(x), arch))

    calibrate_bn(net, forward, calib)
    return net


def evaluate_arch(supernet: nn.Module, arch: Arch, calib: list[torch.Tensor], data, splits: Iterable[str],
                  task: Task, placement: Placement = CPU, batch_size: int | None = None) -> dict:
    """``{"<split>_<score>": ..., "flops": MACs, "params": ...}`` for ``arch`` (e.g. ``val_accuracy``), scored
    in batches of ``batch_size`` examples (default: the supernet's ``eval_batch_size`` hook, 500)."""
    batch_size = batch_size or hook(supernet, "eval_batch_size")()
    net = calibrated_subnet(supernet, arch, calib, placement)
    prepare = lambda x: supernet.prepare_input(x, arch)  # noqa: E731
    result = {f"{name}_{task.score_name}": score(net, data.eval_batches(name, batch_size), task, prepare, placement)
              for name in splits}
    result.update(flops=hook(supernet, "flops")(arch), params=hook(supernet, "params")(arch))
    return result
