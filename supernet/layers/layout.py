"""CPU training layout of convolutional networks: channels-last memory, and a 1-D batch
``(B, C, L)`` as ``(B, C, 1, L)``, each 1-D convolution run as a ``(1, k)`` 2-D one.

On CPU, PyTorch's channels-last 2-D kernels train depthwise convolutions and batch norm
several times faster than the 1-D and channels-first ones (``benchmarks/bench_layout.py``).
The layout is an execution detail: weights keep their shapes (1-D: ``(out, in / groups, k)``),
so state dicts, checkpoints and exports are those of ``nn.Conv1d`` / ``nn.BatchNorm1d``, and
a 3-D input takes the plain 1-D path. The forward value is the same function; only the
order of float sums in reductions differs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def training_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a network should run it: a CPU batch under autograd becomes channels-last,
    a 3-D one as ``(B, C, 1, L)``; anything else (GPU, inference, export) is returned as is.
    A network applies it to its input and again after its first convolution, whose output
    is channels-first when the input has one channel (its two layouts have the same strides)."""
    if x.dim() not in (3, 4) or x.device.type != "cpu" or not torch.is_grad_enabled() or _exporting():
        return x
    return (x.unsqueeze(2) if x.dim() == 3 else x).contiguous(memory_format=torch.channels_last)


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
           padding: int = 0, dilation: int = 1, groups: int = 1) -> torch.Tensor:
    """``F.conv1d`` (same arguments) of a 3-D input, or, on a ``(B, C, 1, L)`` input, the same
    convolution as ``F.conv2d`` with the kernel ``weight[:, :, None, :]`` (output ``(B, out, 1, L')``)."""
    if x.dim() == 3:
        return F.conv1d(x, weight, bias, stride, padding, dilation, groups)
    return conv1d_as_2d(x, weight.unsqueeze(2), bias, stride, padding, dilation, groups)


def conv1d_as_2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1) -> torch.Tensor:
    """:func:`conv1d` of a ``(B, C, 1, L)`` input whose kernel is already ``(out, in / groups, 1, k)``."""
    return F.conv2d(x, weight, bias, (1, stride), (0, padding), (1, dilation), groups)


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters and state dict) that also runs the ``(B, C, 1, L)`` layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return super().forward(x)
        return conv1d(x, self.weight, self.bias, self.stride[0], self.padding[0], self.dilation[0], self.groups)


class BatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also accepts the ``(B, C, 1, L)`` layout (normalised per channel alike)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() == 4 and x.shape[2] == 1:
            return
        super()._check_input_dim(x)
