"""The mobilenet search space: OFA MobileNetV3's dimensions for 1-D signals and 2-D images."""
from __future__ import annotations

import torch
from torch import nn

from supernet.core.arch import Arch, Dimension
from supernet.core.space import SearchSpace

from .config import MobileNetConfig
from .latency import all_units, units
from .ofa_specialized import PREFIX, fitting, pick_arch
from .static import build_static


class MobileNetSpace(SearchSpace):
    name = "mobilenet"

    def __init__(self, config: MobileNetConfig):
        self.config = config
        slots = config.slots
        super().__init__([Dimension("ks", config.kernels, slots), Dimension("e", config.expands, slots),
                          Dimension("d", config.depths, config.searched_stages), Dimension("r", config.resolutions)])

    def inactive(self, values) -> dict[str, set[int]]:
        c, d = self.config, values["d"]
        off = {i for s in range(c.searched_stages) for i in c.stage_slots(s)[d[s]:]}
        return {"ks": off, "e": off}

    def load_arch(self, text_or_path: str) -> Arch:
        """As :meth:`SearchSpace.load_arch`, plus ``ofa:ID``: OFA's published pick ``ID`` (an
        ``ofa_specialized`` net config, e.g. ``ofa:note10_lat-22ms_top1-76.6_finetune-25``) when it is
        an arch of this space (:mod:`.ofa_specialized`)."""
        if isinstance(text_or_path, str) and text_or_path.startswith(PREFIX):
            return pick_arch(self, text_or_path[len(PREFIX):])
        return super().load_arch(text_or_path)

    def named_archs(self) -> list[str]:
        """``ofa:ID`` of every OFA pick that is an arch of this space (its net, one of its resolutions)."""
        return [PREFIX + pick for pick in fitting(self.config)]

    def input_shape(self, arch: Arch) -> tuple[int, ...]:
        """Shape of one input (no batch axis) at the arch's resolution."""
        return (self.config.in_channels,) + (arch["r"],) * self.config.ndim

    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """A standard-normal batch at the arch's resolution: ``(batch, C, *[r] * ndim)``."""
        return torch.randn((batch,) + self.input_shape(arch), generator=generator)

    def input_size(self) -> int:
        """The side streamed images are decoded to: the largest resolution (each arch's is a resize of it)."""
        return max(self.config.resolutions)

    def build_static(self, arch: Arch) -> nn.Module:
        """The arch's static network with fresh weights (for latency measurement)."""
        return build_static(self.config, arch)

    def latency_units(self, arch: Arch) -> list:
        return units(self.config, arch)

    def all_latency_units(self):
        return all_units(self.config)

    def cardinality(self) -> int:
        c = self.config
        per_block = len(c.kernels) * len(c.expands)
        return (sum(per_block ** d for d in c.depths) ** c.searched_stages * per_block ** c.fixed_stages
                * len(c.resolutions))
