"""Evaluate one arch: extract, recalibrate BN, then accuracy, exact FLOPs and params."""
from __future__ import annotations

import torch
from torch import nn

from .arch import Arch
from .calibration import calibrate_bn
from .data import Split


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, prepare=lambda x: x, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on ``split``."""
    model.eval()
    correct = 0
    for x, y in zip(split.x.split(batch_size), split.y.split(batch_size)):
        correct += (model(prepare(x)).argmax(1) == y).sum().item()
    return correct / max(1, len(split))


def calibrated_subnet(supernet: nn.Module, arch: Arch, calib: list[torch.Tensor]) -> nn.Module:
    """The static subnet of ``arch`` with BN statistics recomputed on ``calib``."""
    net = supernet.extract(arch)
    calibrate_bn(net, lambda x: net(supernet.prepare_input(x, arch)), calib)
    return net


def evaluate_arch(supernet: nn.Module, arch: Arch, calib: list[torch.Tensor], splits: dict[str, Split]) -> dict:
    """``{"<split>_accuracy": ..., "flops": MACs, "params": ...}`` for ``arch``."""
    net = calibrated_subnet(supernet, arch, calib)
    result = {f"{name}_accuracy": accuracy(net, split, lambda x: supernet.prepare_input(x, arch))
              for name, split in splits.items()}
    result.update(flops=supernet.flops(arch), params=supernet.params(arch))
    return result
