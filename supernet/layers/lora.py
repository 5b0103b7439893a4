"""Elastic LoRA: one slicing rule serves the supernet's forward and the merged export.

A LoRA-adapted linear layer holds the frozen base ``W (out, in)``, bias ``b (out,)`` and the
largest adapter ``A (r_max, in)``, ``B (out, r_max)``. A subnet uses rank ``r <= r_max`` (the
leading rows of ``A`` and columns of ``B``) and optionally only the leading ``out`` output
rows or ``in`` input columns (MLP width). The scaling ``s = alpha / r_max`` is the same for
every rank, so a smaller rank is a truncation of the largest adapter, not a rescaled one:

    y = x W[:out, :in]^T + b[:out] + s * (x A[:r, :in]^T) B[:out, :r]^T
    merged weight = W[:out, :in] + s * B[:out, :r] A[:r, :in]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class LoraPair(nn.Module):
    """The largest adapter of one linear layer: ``A (r_max, in)`` kaiming-uniform, ``B (out, r_max)`` zero (PEFT's init)."""

    def __init__(self, in_features: int, out_features: int, rank: int):
        super().__init__()
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))


@dataclass(frozen=True)
class LoraSlice:
    """The active part of one adapted layer: rank, and the leading output rows / input columns (None = all)."""

    rank: int
    out: int | None = None
    inp: int | None = None


def lora_parts(linear: nn.Linear, pair: LoraPair, cut: LoraSlice):
    """``(W, b, A, B)`` of the active slice: ``W[:out, :in]``, ``b[:out]``, ``A[:r, :in]``, ``B[:out, :r]``."""
    rows, cols = slice(cut.out), slice(cut.inp)
    bias = None if linear.bias is None else linear.bias[rows]
    return linear.weight[rows, cols], bias, pair.A[:cut.rank, cols], pair.B[rows, :cut.rank]


def lora_forward(x: torch.Tensor, linear: nn.Linear, pair: LoraPair, cut: LoraSlice, scaling: float) -> torch.Tensor:
    """``x W^T + b + s (x A^T) B^T`` on the active slice; ``x (..., in) -> (..., out)``."""
    weight, bias, a, b = lora_parts(linear, pair, cut)
    return F.linear(x, weight, bias) + scaling * F.linear(F.linear(x, a), b)


@torch.no_grad()
def lora_merged(linear: nn.Linear, pair: LoraPair, cut: LoraSlice, scaling: float):
    """``(W + s B A, b)`` of the active slice, computed in fp32 (the merged layer's weight and bias)."""
    weight, bias, a, b = lora_parts(linear, pair, cut)
    merged = weight.float() + scaling * (b.float() @ a.float())
    return merged.clone(), None if bias is None else bias.detach().float().clone()
