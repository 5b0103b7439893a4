"""MBConv building blocks of the mobilenet space: elastic and static twins.

A static block has the same submodule names as its elastic twin, so the elastic
block's sliced tensors load straight into it (``static.load_state_dict``).
"""
from __future__ import annotations

import torch
from torch import nn

from supernet.layers import layout
from supernet.layers.elastic import ElasticBatchNorm, ElasticConv, static_state

_CONV = {1: layout.Conv1d, 2: nn.Conv2d}  # the 1-D layers also run the CPU training layout
_BN = {1: layout.BatchNorm1d, 2: nn.BatchNorm2d}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without dropping below 90% (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def se_channels(channels: int) -> int:
    return make_divisible(channels // 4)


def activation(hswish: bool, relu6: bool = False) -> nn.Module:
    """h-swish or ReLU (MobileNetV3's per-stage choice), or ReLU6 everywhere (ProxylessNAS)."""
    return nn.ReLU6() if relu6 else nn.Hardswish() if hswish else nn.ReLU()


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)  # (B, C, *S) -> (B, C, *1)


class ElasticSE(nn.Module):
    """Squeeze-excite over the active channels: ``x * hsigmoid(W2 relu(W1 mean(x)))``."""

    def __init__(self, ndim: int, channels: int):
        super().__init__()
        mid = se_channels(channels)
        self.reduce = ElasticConv(ndim, channels, mid, 1, bias=True)
        self.expand = ElasticConv(ndim, mid, channels, 1, bias=True)

    def forward(self, x: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``tensors``: :meth:`cuts` already cut, or None to cut here."""
        c = x.shape[1]
        t = tensors or {}
        y = torch.relu(self.reduce(_spatial_mean(x), se_channels(c), tensors=t.get("reduce")))  # (B, mid, *1)
        y = nn.functional.hardsigmoid(self.expand(y, c, tensors=t.get("expand")))  # (B, C, *1)
        return x * y

    def cuts(self, channels: int, unit_axis: int | None = None) -> dict[str, dict]:
        """What :meth:`forward` cuts, per layer (see :meth:`ElasticMBConv.cuts`)."""
        mid = se_channels(channels)
        return {"reduce": self.reduce.cuts(channels, mid, 1, unit_axis),
                "expand": self.expand.cuts(mid, channels, 1, unit_axis)}

    def sliced_state(self, channels: int) -> dict[str, torch.Tensor]:
        mid = se_channels(channels)
        return {**static_state("reduce", self.reduce.sliced(channels, mid, 1)),
                **static_state("expand", self.expand.sliced(mid, channels, 1))}


class StaticSE(nn.Module):
    def __init__(self, ndim: int, channels: int):
        super().__init__()
        mid = se_channels(channels)
        self.reduce = _CONV[ndim](channels, mid, 1)
        self.expand = _CONV[ndim](mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.reduce(_spatial_mean(x)))
        return x * nn.functional.hardsigmoid(self.expand(y))


class ElasticMBConv(nn.Module):
    """Expand 1x1 -> depthwise kxk -> squeeze-excite -> project 1x1, residual when shapes allow.

    ``forward(x, kernel, expand)``: the hidden width is ``make_divisible(in * expand)``;
    the depthwise kernel is the centred ``kernel x kernel`` window of the largest one, or with
    ``transform_kernels`` (OFA's kernel transformation) that window through learned matrices
    (:class:`~supernet.layers.elastic.ElasticConv`).
    """

    def __init__(self, ndim: int, cin: int, cout: int, stride: int, max_kernel: int, max_expand: int,
                 use_se: bool, hswish: bool, relu6: bool = False, eps: float = 1e-5,
                 transform_kernels: tuple[int, ...] = ()):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        hidden = make_divisible(cin * max_expand)
        self.expand = ElasticConv(ndim, cin, hidden, 1)
        self.expand_bn = ElasticBatchNorm(ndim, hidden, eps)
        self.depthwise = ElasticConv(ndim, hidden, hidden, max_kernel, stride, depthwise=True,
                                     transform_kernels=transform_kernels)
        self.depthwise_bn = ElasticBatchNorm(ndim, hidden, eps)
        self.se = ElasticSE(ndim, hidden) if use_se else None
        self.project = ElasticConv(ndim, hidden, cout, 1)
        self.project_bn = ElasticBatchNorm(ndim, cout, eps)
        self.act = activation(hswish, relu6)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor, kernel: int, expand: int,
                tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``tensors``: :meth:`cuts` already cut (``supernet.layers.cuts.cut_together``), or None to cut
        each layer's tensors as it runs."""
        hidden = make_divisible(self.cin * expand)
        t = tensors or {}
        h = self.act(self.expand_bn(self.expand(x, hidden, tensors=t.get("expand")), t.get("expand_bn")))
        h = self.depthwise(h, hidden, kernel, tensors=t.get("depthwise"))  # (B, hidden, *S/stride)
        h = self.act(self.depthwise_bn(h, t.get("depthwise_bn")))
        if self.se is not None:
            h = self.se(h, t.get("se"))
        h = self.project_bn(self.project(h, self.cout, tensors=t.get("project")), t.get("project_bn"))
        return x + h if self.residual else h  # (B, cout, *S/stride)

    def cuts(self, kernel: int, expand: int, unit_axis: int | None = None) -> dict[str, dict]:
        """What :meth:`forward` cuts, per layer: ``{layer: {tensor: (parameter, index, unit_axis)}}``
        (``unit_axis=2``: the 1-D training layout's ``(out, in, 1, k)`` kernels)."""
        hidden = make_divisible(self.cin * expand)
        cuts = {"expand": self.expand.cuts(self.cin, hidden, 1, unit_axis), "expand_bn": self.expand_bn.cuts(hidden),
                "depthwise": self.depthwise.cuts(hidden, hidden, kernel, unit_axis),
                "depthwise_bn": self.depthwise_bn.cuts(hidden),
                "project": self.project.cuts(hidden, self.cout, 1, unit_axis), "project_bn": self.project_bn.cuts(self.cout)}
        if self.se is not None:
            cuts["se"] = self.se.cuts(hidden, unit_axis)
        return cuts

    def sliced_state(self, kernel: int, expand: int) -> dict[str, torch.Tensor]:
        """Active tensors, keyed as in the matching :class:`StaticMBConv`."""
        hidden = make_divisible(self.cin * expand)
        state = {**static_state("expand", self.expand.sliced(self.cin, hidden, 1)),
                 **static_state("expand_bn", self.expand_bn.sliced(hidden)),
                 **static_state("depthwise", self.depthwise.sliced(hidden, hidden, kernel)),
                 **static_state("depthwise_bn", self.depthwise_bn.sliced(hidden)),
                 **static_state("project", self.project.sliced(hidden, self.cout, 1)),
                 **static_state("project_bn", self.project_bn.sliced(self.cout))}
        if self.se is not None:
            state.update(static_state("se", self.se.sliced_state(hidden)))
        return state


class StaticMBConv(nn.Module):
    """The plain MBConv block that :class:`ElasticMBConv` extracts to."""

    def __init__(self, ndim: int, cin: int, cout: int, stride: int, kernel: int, hidden: int,
                 use_se: bool, hswish: bool, relu6: bool = False, eps: float = 1e-5):
        super().__init__()
        conv, bn = _CONV[ndim], _BN[ndim]
        self.expand = conv(cin, hidden, 1, bias=False)
        self.expand_bn = bn(hidden, eps)
        self.depthwise = conv(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self.depthwise_bn = bn(hidden, eps)
        self.se = StaticSE(ndim, hidden) if use_se else None
        self.project = conv(hidden, cout, 1, bias=False)
        self.project_bn = bn(cout, eps)
        self.act = activation(hswish, relu6)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.expand_bn(self.expand(x)))
        h = self.act(self.depthwise_bn(self.depthwise(h)))
        if self.se is not None:
            h = self.se(h)
        h = self.project_bn(self.project(h))
        return x + h if self.residual else h


class Stem(nn.Module):
    """Fixed stem: conv kxk (stride) + BN + h-swish, then a depthwise-separable block (depthwise + BN +
    ReLU, project + BN); ``relu6``: ReLU6 for both activations (ProxylessNAS)."""

    def __init__(self, ndim: int, cin: int, channels: int, first_channels: int, stride: int,
                 relu6: bool = False, eps: float = 1e-5):
        super().__init__()
        conv, bn = _CONV[ndim], _BN[ndim]
        self.conv = conv(cin, channels, 3, stride, 1, bias=False)
        self.bn = bn(channels, eps)
        self.act = activation(True, relu6)
        self.depthwise = conv(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.depthwise_bn = bn(channels, eps)
        self.block_act = activation(False, relu6)
        self.project = conv(channels, first_channels, 1, bias=False)
        self.project_bn = bn(first_channels, eps)
        self.residual = channels == first_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, cin, *S) -> (B, C, *S/stride); CPU training runs channels-last (see supernet.layers.layout)
        x = self.act(self.bn(layout.training_layout(self.conv(layout.training_layout(x)))))
        h = self.project_bn(self.project(self.block_act(self.depthwise_bn(self.depthwise(x)))))
        return x + h if self.residual else h


class Head(nn.Module):
    """Fixed head: 1x1 expand + BN + h-swish, global pool, feature mix + h-swish, dropout, linear.
    ``features=0``: no feature mix (ProxylessNAS: the 1x1 conv is the last layer before the pool);
    ``relu6``: ReLU6 for h-swish."""

    def __init__(self, ndim: int, cin: int, expand: int, features: int, num_classes: int, dropout: float,
                 relu6: bool = False, eps: float = 1e-5):
        super().__init__()
        self.expand = _CONV[ndim](cin, expand, 1, bias=False)
        self.expand_bn = _BN[ndim](expand, eps)
        self.act = activation(True, relu6)
        self.mix = nn.Linear(expand, features, bias=False) if features else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(features or expand, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.expand_bn(self.expand(x)))  # (B, cin, *S) -> (B, expand, *S)
        x = x.flatten(2).mean(-1)  # (B, expand)
        if self.mix is not None:
            x = self.act(self.mix(x))  # (B, features)
        return self.classifier(self.dropout(x))  # (B, num_classes)
