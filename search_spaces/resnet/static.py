"""The static resnet subnet: stem, plain bottlenecks, head (no elastic code on its forward path)."""
from __future__ import annotations

import torch
from torch import nn

from supernet.core.arch import Arch

from .blocks import StaticBottleneck, StaticHead, StaticStem
from .config import ResNetConfig, block_plan, stem_plan


class StaticResNet(nn.Module):
    """A plain subnet: stem (with max pool), a sequence of bottlenecks, pool + classifier."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module):
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))  # (B, C, r, r) -> (B, num_classes)


def build_static(config: ResNetConfig, arch: Arch) -> StaticResNet:
    """The static subnet's structure, freshly initialised (load weights into it)."""
    stem, plan = stem_plan(config, arch), block_plan(config, arch)
    blocks = [StaticBottleneck(b.cin, b.mid, b.cout, b.stride, b.downsample) for b in plan]
    features = plan[-1].cout if plan else stem.out
    return StaticResNet(StaticStem(config.in_channels, stem.mid, stem.out, stem.residual), blocks,
                        StaticHead(features, config.num_classes, config.dropout))
