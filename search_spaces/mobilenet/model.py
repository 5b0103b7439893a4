"""The weight-entangled mobilenet supernet: ``forward(x, arch)`` runs the subnet ``arch``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.core.arch import Arch
from supernet.layers.cuts import cut_plan, cut_together

from .blocks import ElasticMBConv
from .config import MobileNetConfig, block_plan
from .costs import count_macs, count_params
from .space import MobileNetSpace
from .static import build_head, build_static, build_stem


class MobileNetSupernet(nn.Module):
    """Weight-entangled MobileNetV3 supernet; ``forward(x, arch)`` runs the subnet ``arch``."""

    def __init__(self, config: MobileNetConfig):
        super().__init__()
        self.config, self.space = config, MobileNetSpace(config)
        c = config
        self.stem = build_stem(c)
        blocks, cin = [], c.first_channels
        transforms = c.kernels if c.kernel_transform else ()
        for s, width in enumerate(c.widths):
            for j in range(len(c.stage_slots(s))):
                blocks.append(ElasticMBConv(c.ndim, cin, width, c.strides[s] if j == 0 else 1, max(c.kernels),
                                            max(c.expands), c.use_se[s], c.hswish[s], c.relu6, c.bn_eps, transforms))
                cin = width
        self.blocks = nn.ModuleList(blocks)
        self.head = build_head(c)

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """A data batch as the subnet takes it: ``(B, *S)`` gets its channel axis, ``(B, C, *S)`` is resized
        to the arch's resolution (linear / bilinear interpolation)."""
        if x.dim() == self.config.ndim + 1:
            x = x.unsqueeze(1)  # (B, *S) -> (B, 1, *S)
        return resize(x, arch["r"], self.config.ndim)

    def preprocessing(self, arch: Arch) -> str:
        """What ``prepare_input`` does, for ``arch.json``."""
        return "Resize a batch to the arch's resolution (linear / bilinear interpolation)."

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        x = self.stem(x)  # (B, first, *S / stem_stride)
        plan = block_plan(self.config, arch)
        tensors = [None] * len(plan)
        if torch.is_grad_enabled():  # every block's active tensors cut by one autograd node
            unit_axis = 2 if self.config.ndim == 1 and x.dim() == 4 else None  # the 1-D training layout
            tensors = cut_together([cut_plan(self.blocks[s.index], s.kernel, s.expand, unit_axis) for s in plan])
        for spec, active in zip(plan, tensors):
            x = self.blocks[spec.index](x, spec.kernel, spec.expand, active)
        return self.head(x)  # (B, num_classes)

    def extract(self, arch: Arch) -> nn.Module:
        """A standalone static network equal to ``self(x, arch)``, holding copies of the weights."""
        net = build_static(self.config, arch)
        state = {f"stem.{k}": v for k, v in self.stem.state_dict().items()}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        for pos, spec in enumerate(block_plan(self.config, arch)):
            sliced = self.blocks[spec.index].sliced_state(spec.kernel, spec.expand)
            state.update({f"blocks.{pos}.{k}": v.detach().clone() for k, v in sliced.items()})
        net.load_state_dict(state)
        return net

    def flops(self, arch: Arch) -> int:
        return count_macs(self.config, arch)

    def params(self, arch: Arch) -> int:
        return count_params(self.config, arch)


def resize(x: torch.Tensor, size: int, ndim: int) -> torch.Tensor:
    if tuple(x.shape[2:]) == (size,) * ndim:
        return x
    mode = "linear" if ndim == 1 else "bilinear"
    return F.interpolate(x, size=(size,) * ndim, mode=mode, align_corners=False)
