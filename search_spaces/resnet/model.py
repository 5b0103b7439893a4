"""The weight-entangled resnet supernet (OFA's ``OFAResNets``): ``forward(x, arch)`` runs the subnet ``arch``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.core.arch import Arch

from .blocks import ElasticBottleneck, ElasticHead, ElasticStem
from .config import ResNetConfig, block_plan, downsamples, middle, stem_plan
from .costs import count_macs, count_params
from .space import ResNetSpace
from .static import build_static


class ResNetSupernet(nn.Module):
    """Elastic depth per stage, expand ratio per block and width per stage over OFA's ResNet-50 layout."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config, self.space = config, ResNetSpace(config)
        c = config
        self.stem = ElasticStem(c.in_channels, max(c.stem_mids()), max(c.stem_outs()))
        blocks, cin = [], max(c.stem_outs())
        for s, slots in enumerate(c.stage_slots):
            cout = max(c.stage_widths(s))
            for j in range(slots):
                blocks.append(ElasticBottleneck(cin, middle(cout, max(c.expands)), cout,
                                                c.strides[s] if j == 0 else 1, downsamples(c, s, j)))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = ElasticHead(cin, c.num_classes, c.dropout)

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """A data batch as the subnet takes it: ``(B, H, W)`` gets its channel axis, ``(B, C, H, W)`` is
        resized to the arch's resolution (bilinear interpolation)."""
        if x.dim() == 3:
            x = x.unsqueeze(1)  # (B, H, W) -> (B, 1, H, W)
        r = arch["r"]
        if tuple(x.shape[2:]) == (r, r):
            return x
        return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)

    def preprocessing(self, arch: Arch) -> str:
        """What ``prepare_input`` does, for ``arch.json``."""
        return "Resize a batch to the arch's resolution (bilinear interpolation)."

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        stem = stem_plan(self.config, arch)
        x = self.stem(x, stem.mid, stem.out, stem.residual)  # (B, stem.out, r/4, r/4)
        for spec in block_plan(self.config, arch):
            x = self.blocks[spec.index](x, spec.mid, spec.cout)  # (B, cout, *S/stride)
        return self.head(x)  # (B, num_classes)

    def extract(self, arch: Arch) -> nn.Module:
        """A standalone static network equal to ``self(x, arch)``, holding copies of the weights."""
        net, c = build_static(self.config, arch), self.config
        stem, plan = stem_plan(c, arch), block_plan(c, arch)
        state = {f"stem.{k}": v for k, v in self.stem.sliced_state(c.in_channels, stem.mid, stem.out,
                                                                    stem.residual).items()}
        for pos, b in enumerate(plan):
            state.update({f"blocks.{pos}.{k}": v for k, v in
                          self.blocks[b.index].sliced_state(b.cin, b.mid, b.cout).items()})
        state.update({f"head.{k}": v for k, v in self.head.sliced_state(plan[-1].cout if plan else stem.out).items()})
        net.load_state_dict({k: v.detach().clone().contiguous() for k, v in state.items()})
        return net

    def flops(self, arch: Arch) -> int:
        return count_macs(self.config, arch)

    def params(self, arch: Arch) -> int:
        return count_params(self.config, arch)
