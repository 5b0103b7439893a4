"""Elastic LoRA: a LoRA layer around a frozen base Linear (PEFT's pattern), sliced by one rule.

:class:`LoraLinear` holds the frozen base layer ``W (out, in)``, ``b (out,)`` and the largest
adapter ``A (r_max, in)``, ``B (out, r_max)``; its forward is PEFT's ``lora.Linear`` forward:

    y = x W^T + b + s * (x A^T) B^T,        s = alpha / r_max

A subnet uses rank ``r <= r_max`` (the leading rows of ``A`` and columns of ``B``) and
optionally only the leading ``out`` output rows or ``in`` input columns (MLP width). The
scaling is the same for every rank, so a smaller rank is a truncation of the largest adapter,
not a rescaled one. :func:`lora_parts` is the one slicing rule: :func:`sliced_tensors` hands its
slices to the layer's own forward (``torch.func.functional_call``), :func:`lora_merged` folds
them into the merged weight of an export:

    merged weight = W[:out, :in] + s * B[:out, :r] A[:r, :in]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class LoraLinear(nn.Module):
    """``base_layer`` (frozen) plus the largest adapter: ``lora_A`` kaiming-uniform, ``lora_B`` zero (PEFT's init).

    The adapter is fp32 whatever the base's dtype; the input is cast to it for the low-rank path and the
    sum back to the base's output dtype, as PEFT does.
    """

    def __init__(self, base_layer: nn.Linear, rank: int, scaling: float):
        super().__init__()
        self.base_layer, self.scaling = base_layer, scaling
        device = base_layer.weight.device
        self.lora_A = nn.Parameter(torch.empty(rank, base_layer.in_features, device=device))
        self.lora_B = nn.Parameter(torch.zeros(base_layer.out_features, rank, device=device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in) -> (..., out)``: ``base(x) + s * B(A(x))``."""
        result = self.base_layer(x)
        low = F.linear(F.linear(x.to(self.lora_A.dtype), self.lora_A), self.lora_B)
        return (result + low * self.scaling).to(result.dtype)


@dataclass(frozen=True)
class LoraSlice:
    """The active part of one adapted layer: rank, and the leading output rows / input columns (None = all)."""

    rank: int
    out: int | None = None
    inp: int | None = None


def lora_parts(layer: LoraLinear, cut: LoraSlice):
    """``(W, b, A, B)`` of the active slice: ``W[:out, :in]``, ``b[:out]``, ``A[:r, :in]``, ``B[:out, :r]`` (views)."""
    rows, cols, base = slice(cut.out), slice(cut.inp), layer.base_layer
    bias = None if base.bias is None else base.bias[rows]
    return base.weight[rows, cols], bias, layer.lora_A[:cut.rank, cols], layer.lora_B[rows, :cut.rank]


def sliced_tensors(layer: LoraLinear, cut: LoraSlice, prefix: str) -> dict[str, torch.Tensor]:
    """The slices of :func:`lora_parts` by parameter name under ``prefix``, for ``functional_call``: the
    layer's own forward then computes ``x W[:out, :in]^T + b[:out] + s (x A[:r, :in]^T) B[:out, :r]^T``."""
    weight, bias, a, b = lora_parts(layer, cut)
    tensors = {f"{prefix}base_layer.weight": weight, f"{prefix}lora_A": a, f"{prefix}lora_B": b}
    if bias is not None:
        tensors[f"{prefix}base_layer.bias"] = bias
    return tensors


@torch.no_grad()
def lora_merged(layer: LoraLinear, cut: LoraSlice, merge: bool = True, dtype: torch.dtype | None = None):
    """``(W + s B A, b)`` of the active slice (``W``, ``b`` alone without ``merge``), new tensors: summed in
    fp32, returned in ``dtype`` (default: the base weight's)."""
    weight, bias, a, b = lora_parts(layer, cut)
    dtype = dtype or weight.dtype
    if merge:
        weight = (weight.float() + layer.scaling * (b.float() @ a.float())).to(dtype)
    else:
        weight = weight.to(dtype, copy=True)
    return weight.contiguous(), None if bias is None else bias.to(dtype, copy=True)
