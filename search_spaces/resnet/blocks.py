"""Building blocks of the resnet space (OFA's ``OFAResNets``): elastic and static twins.

A static block has the same submodule names as its elastic twin, so the elastic block's
sliced tensors load straight into it (``static.load_state_dict``). Every width is a leading
slice of the largest weights (OFA's ``get_active_filter``), cut by the engine's elastic layers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.layers.elastic import ElasticBatchNorm, ElasticConv, ElasticLinear, static_state


def _conv_bn(conv: nn.Module, bn: nn.Module, x: torch.Tensor, out: int) -> torch.Tensor:
    return bn(conv(x, out))


def _pool(x: torch.Tensor) -> torch.Tensor:
    """The stem's max pool: 3x3, stride 2, padding 1."""
    return F.max_pool2d(x, 3, 2, 1)  # (B, C, H, W) -> (B, C, (H-1)//2+1, (W-1)//2+1)


def _shortcut_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """OFA's ``avgpool_conv`` shortcut pool (``stride x stride``, ceil mode); the identity at stride 1."""
    return x if stride == 1 else F.avg_pool2d(x, stride, stride, 0, ceil_mode=True)


class ElasticStem(nn.Module):
    """relu(bn0(conv0 3x3/2)) -> [+ relu(bn1(conv1 3x3)) residual] -> relu(bn2(conv2 3x3)) -> max pool 3x3/2.

    ``forward(x, mid, out, residual)``: ``mid`` the width of conv0 and conv1, ``out`` of conv2;
    conv1 runs only when ``residual`` (OFA's stem depth).
    """

    def __init__(self, cin: int, mid: int, out: int):
        super().__init__()
        self.conv0, self.bn0 = ElasticConv(2, cin, mid, 3, 2), ElasticBatchNorm(2, mid)
        self.conv1, self.bn1 = ElasticConv(2, mid, mid, 3), ElasticBatchNorm(2, mid)
        self.conv2, self.bn2 = ElasticConv(2, mid, out, 3), ElasticBatchNorm(2, out)

    def forward(self, x: torch.Tensor, mid: int, out: int, residual: bool) -> torch.Tensor:
        x = torch.relu(_conv_bn(self.conv0, self.bn0, x, mid))  # (B, mid, H/2, W/2)
        if residual:
            x = torch.relu(_conv_bn(self.conv1, self.bn1, x, mid)) + x
        return _pool(torch.relu(_conv_bn(self.conv2, self.bn2, x, out)))  # (B, out, H/4, W/4)

    def sliced_state(self, cin: int, mid: int, out: int, residual: bool) -> dict[str, torch.Tensor]:
        """Active tensors, keyed as in :class:`StaticStem`."""
        state = {**static_state("conv0", self.conv0.sliced(cin, mid, 3)), **static_state("bn0", self.bn0.sliced(mid)),
                 **static_state("conv2", self.conv2.sliced(mid, out, 3)), **static_state("bn2", self.bn2.sliced(out))}
        if residual:
            state.update({**static_state("conv1", self.conv1.sliced(mid, mid, 3)),
                          **static_state("bn1", self.bn1.sliced(mid))})
        return state


class StaticStem(nn.Module):
    """The plain stem that :class:`ElasticStem` extracts to."""

    def __init__(self, cin: int, mid: int, out: int, residual: bool):
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(cin, mid, 3, 2, 1, bias=False), nn.BatchNorm2d(mid)
        if residual:
            self.conv1, self.bn1 = nn.Conv2d(mid, mid, 3, 1, 1, bias=False), nn.BatchNorm2d(mid)
        self.residual = residual
        self.conv2, self.bn2 = nn.Conv2d(mid, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.conv0(x)))
        if self.residual:
            x = torch.relu(self.bn1(self.conv1(x))) + x
        return _pool(torch.relu(self.bn2(self.conv2(x))))


class ElasticBottleneck(nn.Module):
    """relu(bn3(conv3 1x1(relu(bn2(conv2 3x3/s(relu(bn1(conv1 1x1 x)))))) + shortcut(x)).

    ``shortcut`` = identity, or (``downsample``) ``down_bn(down_conv 1x1(avgpool s x s, ceil(x)))``.
    ``forward(x, mid, out)``: the middle and output widths (the input's is read from ``x``).
    """

    def __init__(self, cin: int, mid: int, cout: int, stride: int, downsample: bool):
        super().__init__()
        self.stride, self.downsample = stride, downsample
        self.conv1, self.bn1 = ElasticConv(2, cin, mid, 1), ElasticBatchNorm(2, mid)
        self.conv2, self.bn2 = ElasticConv(2, mid, mid, 3, stride), ElasticBatchNorm(2, mid)
        self.conv3, self.bn3 = ElasticConv(2, mid, cout, 1), ElasticBatchNorm(2, cout)
        if downsample:
            self.down_conv, self.down_bn = ElasticConv(2, cin, cout, 1), ElasticBatchNorm(2, cout)

    def forward(self, x: torch.Tensor, mid: int, out: int) -> torch.Tensor:
        skip = _conv_bn(self.down_conv, self.down_bn, _shortcut_pool(x, self.stride), out) if self.downsample else x
        h = torch.relu(_conv_bn(self.conv1, self.bn1, x, mid))  # (B, mid, H, W)
        h = torch.relu(_conv_bn(self.conv2, self.bn2, h, mid))  # (B, mid, H/s, W/s)
        return torch.relu(_conv_bn(self.conv3, self.bn3, h, out) + skip)  # (B, out, H/s, W/s)

    def sliced_state(self, cin: int, mid: int, out: int) -> dict[str, torch.Tensor]:
        """Active tensors, keyed as in :class:`StaticBottleneck`."""
        state = {**static_state("conv1", self.conv1.sliced(cin, mid, 1)), **static_state("bn1", self.bn1.sliced(mid)),
                 **static_state("conv2", self.conv2.sliced(mid, mid, 3)), **static_state("bn2", self.bn2.sliced(mid)),
                 **static_state("conv3", self.conv3.sliced(mid, out, 1)), **static_state("bn3", self.bn3.sliced(out))}
        if self.downsample:
            state.update({**static_state("down_conv", self.down_conv.sliced(cin, out, 1)),
                          **static_state("down_bn", self.down_bn.sliced(out))})
        return state


class StaticBottleneck(nn.Module):
    """The plain bottleneck that :class:`ElasticBottleneck` extracts to."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, downsample: bool):
        super().__init__()
        self.stride, self.downsample = stride, downsample
        self.conv1, self.bn1 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv2, self.bn2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)
        if downsample:
            self.down_conv, self.down_bn = nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down_bn(self.down_conv(_shortcut_pool(x, self.stride))) if self.downsample else x
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)))
        return torch.relu(self.bn3(self.conv3(h)) + skip)


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """OFA's global average pool: ``x.mean(3).mean(2)``, ``(B, C, H, W) -> (B, C)``."""
    return x.mean(3).mean(2)


class ElasticHead(nn.Module):
    """Global average pool, dropout, linear classifier over the active features."""

    def __init__(self, features: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = ElasticLinear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(global_pool(x)))  # (B, C, H, W) -> (B, num_classes)

    def sliced_state(self, features: int) -> dict[str, torch.Tensor]:
        return static_state("classifier", self.classifier.sliced(features, self.classifier.out_features))


class StaticHead(nn.Module):
    def __init__(self, features: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(global_pool(x)))
