"""Elastic layers: plain modules that hold the largest weights and take the active
size as a ``forward`` argument (or read it from the input's shape).

Each layer has one slicing method, ``sliced(...)``, that returns the active tensors
under the names of the matching static ``torch.nn`` layer's state dict. ``forward``
computes with those tensors; ``static(...)`` builds the plain layer and loads them. So
forward and extraction cannot disagree.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import layout

_CONV = {1: layout.conv1d, 2: F.conv2d}
_CONV_MODULE = {1: layout.Conv1d, 2: nn.Conv2d}
_BN_MODULE = {1: layout.BatchNorm1d, 2: nn.BatchNorm2d}


def _check_ndim(ndim: int) -> int:
    if ndim not in _CONV:
        raise ValueError(f"ndim must be 1 or 2, got {ndim}")
    return ndim


WHOLE = slice(None)


def first(n: int, full: int) -> slice:
    """The first ``n`` of ``full`` entries along an axis: ``WHOLE`` when that is all of them."""
    return WHOLE if n >= full else slice(n)


def centre(full: int, active: int) -> slice:
    """Centred window of ``active`` taps inside a kernel of ``full`` taps (both odd)."""
    start = (full - active) // 2
    return WHOLE if active >= full else slice(start, start + active)


Cut = tuple[torch.Tensor, tuple[slice, ...], "int | None"]  # (tensor, index, unit_axis), as window() takes them


def window(t: torch.Tensor, index: tuple[slice, ...], unit_axis: int | None = None) -> torch.Tensor:
    """``t[index]`` as one view, with a size-1 axis inserted at ``unit_axis`` when given (as
    ``t[index].unsqueeze(unit_axis)``); ``t`` itself when nothing is cut or inserted.

    Every view of a parameter is an autograd node whose backward allocates a gradient of the
    parameter's full size, and these nodes are most of a small subnet's cost over its static twin
    (``benchmarks/bench_elastic.py``). So a tensor used whole gets no view, a cut along one axis is one
    ``slice``, and a cut along several axes, or one with an inserted axis, is one ``as_strided``
    view instead of a chain of one node per axis. :func:`supernet.layers.cuts.cut_together` makes
    the views of many parameters in one node.
    """
    cut = [axis for axis, s in enumerate(index) if s is not WHOLE]
    if unit_axis is None and len(cut) <= 1:
        return t[index] if cut else t
    if not cut:
        return t.unsqueeze(unit_axis)
    return t.as_strided(*window_geometry(t, index, unit_axis))


def is_whole(index: tuple[slice, ...], unit_axis: int | None = None) -> bool:
    """Whether :func:`window` returns the tensor itself."""
    return unit_axis is None and all(s is WHOLE for s in index)


def window_geometry(t: torch.Tensor, index: tuple[slice, ...],
                    unit_axis: int | None = None) -> tuple[list[int], list[int], int]:
    """``(sizes, strides, storage offset)`` of :func:`window`'s view, for ``as_strided``."""
    sizes, strides, offset = list(t.shape), list(t.stride()), t.storage_offset()
    for axis, s in enumerate(index):
        if s is not WHOLE:
            start, stop, _ = s.indices(sizes[axis])
            sizes[axis], offset = stop - start, offset + start * strides[axis]
    if unit_axis is not None:  # the stride unsqueeze would give it
        strides.insert(unit_axis, sizes[unit_axis] * strides[unit_axis] if unit_axis < len(sizes) else 1)
        sizes.insert(unit_axis, 1)
    return sizes, strides, offset


class ElasticConv(nn.Module):
    """Convolution over 1-D or 2-D input with elastic in/out channels and kernel size.

    Active weight = ``W[:out, :in, c, c]`` with ``c`` the centred window of the
    kernel (``W[:out, :, c, c]`` for depthwise, where ``groups = in = out``).
    Padding is ``k // 2`` so stride-1 convolutions keep the spatial size.
    """

    def __init__(self, ndim: int, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, depthwise: bool = False, bias: bool = False,
                 transform_kernels: tuple[int, ...] = ()):
        """``transform_kernels``: the kernel sizes (largest = ``kernel_size``) chained by learned
        transforms, OFA's ``KERNEL_TRANSFORM_MODE=1``: each smaller one is ``M @ centre(next larger)``
        over the flattened taps, ``M`` the parameter ``"{larger}to{smaller}_matrix"`` (identity at
        init); empty: a smaller kernel is the plain centre of the largest."""
        super().__init__()
        self.ndim = _check_ndim(ndim)
        if depthwise and in_channels != out_channels:
            raise ValueError("a depthwise convolution needs in_channels == out_channels")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.depthwise = kernel_size, stride, depthwise
        per_group_in = 1 if depthwise else in_channels
        self.weight = nn.Parameter(torch.empty(out_channels, per_group_in, *([kernel_size] * ndim)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.transform_kernels = tuple(sorted(set(transform_kernels)))
        if self.transform_kernels and self.transform_kernels[-1] != kernel_size:
            raise ValueError(f"transform_kernels must end at the kernel size {kernel_size}")
        for small, large in zip(self.transform_kernels, self.transform_kernels[1:]):
            self.register_parameter(f"{large}to{small}_matrix", nn.Parameter(torch.eye(small ** ndim)))

    def transform_chain(self, kernel_size: int) -> list[tuple[int, int]]:
        """``(larger, smaller)`` steps from the largest kernel down to ``kernel_size`` (none without
        transforms, or at the largest kernel)."""
        ks = self.transform_kernels
        return [(ks[i], ks[i - 1]) for i in range(len(ks) - 1, 0, -1) if ks[i] > kernel_size]

    def window_index(self, in_channels: int, out_channels: int, kernel_size: int) -> tuple[slice, ...]:
        """The active window of ``weight``: ``(out, in, taps...)``; its first entry also cuts ``bias``.
        With kernel transforms the taps stay whole (:meth:`kernel` cuts and transforms them)."""
        per_group_in = WHOLE if self.depthwise else first(in_channels, self.in_channels)
        active = self.kernel_size if self.transform_chain(kernel_size) else kernel_size
        taps = (centre(self.kernel_size, active),) * self.ndim
        return (first(out_channels, self.out_channels), per_group_in) + taps

    def cuts(self, in_channels: int, out_channels: int, kernel_size: int,
             unit_axis: int | None = None) -> dict[str, Cut]:
        """What :meth:`sliced` and :meth:`forward` cut, as :func:`window` arguments (``unit_axis=2``:
        the ``(out, in, 1, k)`` kernel of the 1-D training layout), transform matrices included."""
        index = self.window_index(in_channels, out_channels, kernel_size)
        cuts = {"weight": (self.weight, index, unit_axis)}
        if self.bias is not None:
            cuts["bias"] = (self.bias, index[:1], None)
        for large, small in self.transform_chain(kernel_size):
            name = f"{large}to{small}_matrix"
            cuts[name] = (getattr(self, name), (WHOLE, WHOLE), None)
        return cuts

    def kernel(self, tensors: dict[str, torch.Tensor], kernel_size: int) -> torch.Tensor:
        """The active kernel from this call's cut tensors: the cut weight, through each transform of
        :meth:`transform_chain` (``w_small = reshape(flat(centre(w_large)) @ M^T)``, as OFA's
        ``DynamicSeparableConv2d.get_active_filter``)."""
        weight = tensors["weight"]
        for large, small in self.transform_chain(kernel_size):
            taps = (centre(large, small),) * self.ndim
            cropped = weight[(WHOLE,) * (weight.dim() - self.ndim) + taps].contiguous()
            flat = F.linear(cropped.view(-1, small ** self.ndim), tensors[f"{large}to{small}_matrix"])
            weight = flat.view(*cropped.shape)
        return weight

    def sliced(self, in_channels: int, out_channels: int, kernel_size: int) -> dict[str, torch.Tensor]:
        """The active tensors under the static conv's names (``weight``, ``bias``)."""
        cut = {name: window(*c) for name, c in self.cuts(in_channels, out_channels, kernel_size).items()}
        state = {"weight": self.kernel(cut, kernel_size)}
        if self.bias is not None:
            state["bias"] = cut["bias"]
        return state

    def forward(self, x: torch.Tensor, out_channels: int | None = None, kernel_size: int | None = None,
                tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``tensors``: this call's :meth:`cuts`, already cut (e.g. by ``cut_together``); cut here when None."""
        in_channels = x.shape[1]
        out_channels = in_channels if self.depthwise else (out_channels or self.out_channels)
        kernel_size = kernel_size or self.kernel_size
        groups = in_channels if self.depthwise else 1
        as_2d = self.ndim == 1 and x.dim() == 4  # (B, in, 1, L): the CPU training layout, see supernet.layers.layout
        if tensors is None:
            cuts = self.cuts(in_channels, out_channels, kernel_size, 2 if as_2d else None)
            tensors = {name: window(*cut) for name, cut in cuts.items()}
        weight, bias = self.kernel(tensors, kernel_size), tensors.get("bias")
        if as_2d:
            return layout.conv1d_as_2d(x, weight, bias, self.stride, kernel_size // 2, 1, groups)
        # (B, in, *S) -> (B, out, *S / stride)
        return _CONV[self.ndim](x, weight, bias, self.stride, kernel_size // 2, 1, groups)

    def static(self, in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
        out_channels = in_channels if self.depthwise else out_channels
        conv = _CONV_MODULE[self.ndim](in_channels, out_channels, kernel_size, self.stride, kernel_size // 2,
                                       groups=in_channels if self.depthwise else 1, bias=self.bias is not None)
        return _loaded(conv, self.sliced(in_channels, out_channels, kernel_size))


class ElasticLinear(nn.Module):
    """Linear layer with elastic in/out features: active weight ``W[:out, :in]``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        ref = nn.Linear(in_features, out_features, bias=bias)
        with torch.no_grad():
            self.weight.copy_(ref.weight)
            if bias:
                self.bias.copy_(ref.bias)

    def sliced(self, in_features: int, out_features: int) -> dict[str, torch.Tensor]:
        out = first(out_features, self.out_features)
        state = {"weight": window(self.weight, (out, first(in_features, self.in_features)))}
        if self.bias is not None:
            state["bias"] = window(self.bias, (out,))
        return state

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        p = self.sliced(x.shape[-1], out_features or self.out_features)
        return F.linear(x, p["weight"], p.get("bias"))  # (..., in) -> (..., out)

    def static(self, in_features: int, out_features: int) -> nn.Linear:
        return _loaded(nn.Linear(in_features, out_features, bias=self.bias is not None),
                       self.sliced(in_features, out_features))


class ElasticBatchNorm(nn.Module):
    """Batch norm over the first ``C`` channels (``C`` read from the input).

    Weight, bias and running statistics are the leading ``C`` entries; updates of the
    running statistics write into those entries. ``momentum=None`` gives the exact
    cumulative average, as in ``torch.nn.BatchNorm``.
    """

    def __init__(self, ndim: int, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__()
        self.ndim = _check_ndim(ndim)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self._stat_views: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def running_stats(self, num_features: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of the leading ``num_features`` entries of ``running_mean`` and ``running_var``
        (updates write through). Buffers take no autograd, so each width's views are made once and
        kept while they still view the current buffers (checked by address: ``.to()``, assignment
        or a swap of a buffer makes new ones)."""
        if num_features >= self.num_features:
            return self.running_mean, self.running_var
        views = self._stat_views.get(num_features)
        if (views is None or views[0].data_ptr() != self.running_mean.data_ptr()
                or views[1].data_ptr() != self.running_var.data_ptr()):
            views = self._stat_views[num_features] = (self.running_mean[:num_features],
                                                      self.running_var[:num_features])
        return views

    def cuts(self, num_features: int) -> dict[str, Cut]:
        c = (first(num_features, self.num_features),)
        return {"weight": (self.weight, c, None), "bias": (self.bias, c, None)}

    def sliced(self, num_features: int) -> dict[str, torch.Tensor]:
        mean, var = self.running_stats(num_features)
        return {**{name: window(*cut) for name, cut in self.cuts(num_features).items()}, "running_mean": mean,
                "running_var": var, "num_batches_tracked": self.num_batches_tracked}

    def forward(self, x: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``tensors``: weight and bias already cut (see :meth:`ElasticConv.forward`)."""
        c = x.shape[1]
        if tensors is None:
            tensors = {name: window(*cut) for name, cut in self.cuts(c).items()}
        mean, var = self.running_stats(c)
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(x, mean, var, tensors["weight"], tensors["bias"], self.training, factor, self.eps)

    def static(self, num_features: int) -> nn.Module:
        bn = _BN_MODULE[self.ndim](num_features, eps=self.eps, momentum=self.momentum)
        return _loaded(bn, self.sliced(num_features))


class ElasticLayerNorm(nn.Module):
    """Layer norm over the last ``C`` features (``C`` read from the input)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def sliced(self, num_features: int) -> dict[str, torch.Tensor]:
        c = (first(num_features, self.num_features),)
        return {"weight": window(self.weight, c), "bias": window(self.bias, c)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        p = self.sliced(c)
        return F.layer_norm(x, (c,), p["weight"], p["bias"], self.eps)

    def static(self, num_features: int) -> nn.LayerNorm:
        return _loaded(nn.LayerNorm(num_features, eps=self.eps), self.sliced(num_features))


def _loaded(module: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """``module`` with ``state`` copied in (detached, contiguous clones)."""
    module.load_state_dict({k: v.detach().clone().contiguous() for k, v in state.items()})
    return module


def static_state(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Prefix the keys of a sliced state for a parent module's state dict."""
    return {f"{prefix}.{k}": v for k, v in state.items()}
