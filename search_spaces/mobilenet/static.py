"""The static mobilenet subnet: stem, plain MBConv blocks, head."""
from __future__ import annotations

import torch
from torch import nn

from supernet.core.arch import Arch

from .blocks import Head, StaticMBConv, Stem, make_divisible
from .config import MobileNetConfig, block_plan


class StaticMobileNet(nn.Module):
    """A plain subnet: stem, a sequence of MBConv blocks, head. No elastic code."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_static(config: MobileNetConfig, arch: Arch) -> StaticMobileNet:
    """The static subnet's structure, freshly initialised (load weights into it)."""
    c = config
    blocks = [StaticMBConv(c.ndim, b.cin, b.cout, b.stride, b.kernel, make_divisible(b.cin * b.expand),
                           b.use_se, b.hswish) for b in block_plan(config, arch)]
    return StaticMobileNet(Stem(c.ndim, c.in_channels, c.stem_channels, c.first_channels, c.stem_stride),
                           blocks, Head(c.ndim, c.widths[-1], c.head_expand, c.head_features, c.num_classes,
                                        c.dropout))
