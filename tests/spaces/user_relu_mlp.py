"""A user's own space, written from README, ``supernet/core/contract.py`` and ``docs/example_space.py``
alone: an elastic MLP with plain ReLU over 8x8 images that it flattens itself, a config whose fields
are its own (``classes``, not ``num_classes``), and a latency table of its own units.

Not imported by the tests: ``tests/spaces/test_user_space.py`` copies it into a temporary folder and
names the copy in ``SUPERNET_SPACES``, as a user would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from supernet import Arch, Dimension, SearchSpace
from supernet.core.registry import register_space
from supernet.layers.elastic import ElasticLinear


@dataclass(frozen=True)
class ReluMlpConfig:
    features: int = 64
    classes: int = 10
    widths: tuple[int, ...] = (16, 32)
    layers: int = 2


class ReluMlpSpace(SearchSpace):
    name = "relu_mlp"

    def __init__(self, config: ReluMlpConfig):
        self.config = config
        super().__init__([Dimension("depth", tuple(range(1, config.layers + 1))),
                          Dimension("width", config.widths, config.layers)])

    def inactive(self, values):
        return {"width": set(range(values["depth"], self.config.layers))}

    def input_shape(self, arch):
        return (self.config.features,)

    def example_input(self, arch, batch=1, generator=None):
        return torch.randn((batch, self.config.features), generator=generator)

    def build_static(self, arch):
        return static_mlp(self.config, arch)

    def latency_units(self, arch):
        sizes = [self.config.features] + [arch["width"][i] for i in range(arch["depth"])]
        return [unit(self.config, a, b) for a, b in zip(sizes, sizes[1:])] + [unit(self.config, sizes[-1], None)]

    def all_latency_units(self):
        ins = (self.config.features,) + self.config.widths
        return ([unit(self.config, a, b) for a in ins for b in self.config.widths]
                + [unit(self.config, a, None) for a in self.config.widths])


def unit(config, width_in, width_out):
    """One hidden layer (Linear + ReLU), or the classifier when ``width_out`` is None."""
    if width_out is None:
        return (f"head-{width_in}", lambda: nn.Linear(width_in, config.classes), (width_in,))
    return (f"hidden-{width_in}-{width_out}", lambda: nn.Sequential(nn.Linear(width_in, width_out), nn.ReLU()),
            (width_in,))


def static_mlp(config, arch):
    layers, width = [], config.features
    for i in range(arch["depth"]):
        layers += [nn.Linear(width, arch["width"][i]), nn.ReLU()]
        width = arch["width"][i]
    return nn.Sequential(*layers, nn.Linear(width, config.classes))


class ReluMlp(nn.Module):
    def __init__(self, config: ReluMlpConfig):
        super().__init__()
        self.config, self.space = config, ReluMlpSpace(config)
        widest = max(config.widths)
        sizes = [config.features] + [widest] * config.layers
        self.hidden = nn.ModuleList(ElasticLinear(sizes[i], sizes[i + 1]) for i in range(config.layers))
        self.head = ElasticLinear(widest, config.classes)

    def prepare_input(self, x, arch: Arch):
        return x.reshape(len(x), -1)  # images (B, 8, 8) -> (B, 64)

    def forward(self, x, arch: Arch):
        for i in range(arch["depth"]):
            x = torch.relu(self.hidden[i](x, arch["width"][i]))
        return self.head(x)

    def extract(self, arch: Arch):
        net, width, state = static_mlp(self.config, arch), self.config.features, {}
        for i in range(arch["depth"]):
            state.update({f"{2 * i}.{k}": v for k, v in self.hidden[i].sliced(width, arch["width"][i]).items()})
            width = arch["width"][i]
        state.update({f"{2 * arch['depth']}.{k}": v for k, v in self.head.sliced(width, self.config.classes).items()})
        net.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return net


def fit_data(config, info, options=None):
    return replace(config, features=math.prod(info.sample_shape), classes=info.num_classes or config.classes)


register_space("relu_mlp", {"tiny": ReluMlpConfig(features=12, classes=3, widths=(8, 16), layers=2),
                            "digits": ReluMlpConfig()},
               config_cls=ReluMlpConfig, build_space=ReluMlpSpace, build_supernet=ReluMlp, build_static=static_mlp,
               default_variant="digits", fit_data=fit_data)
