"""The resnet search space: OFA ``OFAResNets``' dimensions ``d``, ``e``, ``w`` and the resolution ``r``."""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch
from torch import nn

from supernet.core.arch import Arch, Dimension
from supernet.core.space import SearchSpace

from .config import ResNetConfig
from .latency import all_units, units
from .static import build_static


class ResNetSpace(SearchSpace):
    """See :mod:`search_spaces.resnet.config` for the dimensions. The stem's depth ``d[0]`` is binary
    in OFA (its residual conv runs iff ``d[0] == max(depths)``): a canonical arch holds
    ``min(depths)`` for every smaller value, and :meth:`sample` draws it from ``{min, max}`` as OFA's
    ``sample_active_subnet`` does."""

    name = "resnet"

    def __init__(self, config: ResNetConfig):
        self.config = config
        c = config
        super().__init__([Dimension("d", c.depths, c.stages + 1), Dimension("e", c.expands, c.slots),
                          Dimension("w", tuple(range(len(c.width_mults))), c.stages + 2),
                          Dimension("r", c.resolutions)])

    def inactive(self, values) -> dict[str, set[int]]:
        c, d, off, start = self.config, values["d"], set(), 0
        for s, slots in enumerate(c.stage_slots):
            off.update(range(start + c.base_depths[s] + d[1 + s], start + slots))
            start += slots
        return {"e": off}

    def _canonical(self, values: Mapping[str, object]) -> Arch:
        """The stem's depth normalised to ``min(depths)`` or ``max(depths)``, then the base rule."""
        d = list(values["d"])
        if d[0] != self.config.max_depth:
            d[0] = min(self.config.depths)
        return super()._canonical({**values, "d": d})

    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform choice at every position, the stem's depth uniform over ``{min, max}`` (as OFA)."""
        arch = super().sample(rng)
        stem = (min(self.config.depths), self.config.max_depth)[int(rng.integers(0, 2))]
        return self._canonical({**arch.to_dict(), "d": [stem, *arch["d"][1:]]})

    def input_shape(self, arch: Arch) -> tuple[int, ...]:
        """Shape of one input (no batch axis) at the arch's resolution: ``(C, r, r)``."""
        return (self.config.in_channels, arch["r"], arch["r"])

    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """A standard-normal batch at the arch's resolution: ``(batch, C, r, r)``."""
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
        """Distinct networks: 2 stems x widths^(stages+2) x prod over stages of sum_d expands^(base+d) x resolutions."""
        c = self.config
        stems = 2 if len(c.depths) > 1 else 1
        per_stage = [sum(len(c.expands) ** (b + d) for d in c.depths) for b in c.base_depths]
        return stems * len(c.width_mults) ** (c.stages + 2) * math.prod(per_stage) * len(c.resolutions)
