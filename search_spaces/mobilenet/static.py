"""The static mobilenet subnet: stem, plain MBConv blocks, head."""
from __future__ import annotations

import torch
from torch import nn

from supernet.core.arch import Arch

from .blocks import Head, StaticMBConv, Stem, make_divisible
from .config import BlockSpec, MobileNetConfig, block_plan


class StaticMobileNet(nn.Module):
    """A plain subnet: stem, a sequence of MBConv blocks, head. No elastic code."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_stem(c: MobileNetConfig) -> Stem:
    return Stem(c.ndim, c.in_channels, c.stem_channels, c.first_channels, c.stem_stride, c.relu6, c.bn_eps)


def build_head(c: MobileNetConfig, dropout: float | None = None) -> Head:
    return Head(c.ndim, c.widths[-1], c.head_expand, c.head_features, c.num_classes,
                c.dropout if dropout is None else dropout, c.relu6, c.bn_eps)


def build_block(c: MobileNetConfig, b: BlockSpec) -> StaticMBConv:
    return StaticMBConv(c.ndim, b.cin, b.cout, b.stride, b.kernel, make_divisible(b.cin * b.expand), b.use_se,
                        b.hswish, c.relu6, c.bn_eps)


def build_static(config: MobileNetConfig, arch: Arch) -> StaticMobileNet:
    """The static subnet's structure, freshly initialised (load weights into it)."""
    blocks = [build_block(config, b) for b in block_plan(config, arch)]
    return StaticMobileNet(build_stem(config), blocks, build_head(config))
