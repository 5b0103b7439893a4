"""A search space of your own, worked through: an elastic MLP over flat features.

Use it without installing anything::

    SUPERNET_SPACES=docs/example_space.py supernet spaces
    SUPERNET_SPACES=docs/example_space.py supernet train --space elastic_mlp --data digits64.npz --out runs/mlp

(``digits64.npz`` holds ``x`` of shape ``(N, 64)`` and ``y``; ``tests/spaces/test_example_space.py`` makes one from
scikit-learn's digits and runs this space through train, eval, search, export and finetune.)

What a space provides (``supernet/core/contract.py`` lists every rule in two protocols and one table of
optional hooks with their defaults; ``contract_problems`` checks them and names the rule each problem breaks):

1. a config (a frozen dataclass: it round-trips through ``config.json`` by itself); its fields are yours
   (nothing in the engine reads a field by name: ``num_classes`` here is this space's choice);
2. a :class:`SearchSpace` that keeps its config as ``.config`` (latency tables record it), with its
   dimensions, which positions an arch leaves unused (``inactive``: the checker flags a position that
   changes nothing yet is not declared), the input shape of one example, an example batch and the
   static network of an arch;
3. a supernet (``nn.Module``) with ``.space`` and ``.config``: ``prepare_input`` (data batch -> the static
   net's input; ``arch.json`` describes what it changes unless a ``preprocessing(arch)`` method says it),
   ``forward(x, arch)`` and ``extract(arch)``, both through one slicing rule (the elastic layers' ``sliced``);
4. ``register_space`` with a ``tiny`` variant (the shared tests run it), a name no other file registers,
   and, optionally, ``fit_data`` (here: the data decides the number of features and classes).

FLOPs and parameters need no formulas: the engine counts them on ``extract(arch)``. Write ``flops`` /
``params`` methods only to override that (e.g. to count what a flop counter cannot see); the checker
compares them with the count. Any activation works: GELU here is a choice, ReLU passes the shared
tests too (their gradient check compares with the static subnet on the same batch, so units a batch
leaves dead are no error). A latency table needs ``latency_units(arch)`` / ``all_latency_units()``
on the space, ``(key, build, input shape)`` per unit (``tests/spaces/user_relu_mlp.py`` has them);
without them latency is measured on whole subnets.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from supernet import Arch, Dimension, SearchSpace, SupernetError
from supernet.core.registry import register_space
from supernet.layers.elastic import ElasticLinear


@dataclass(frozen=True)
class MlpConfig:
    in_features: int = 64
    num_classes: int = 10
    widths: tuple[int, ...] = (64, 128, 256)
    max_depth: int = 3


class MlpSpace(SearchSpace):
    """``depth`` hidden layers (1 .. max_depth), each ``width[i]`` units wide; layers beyond the depth are unused."""

    name = "elastic_mlp"

    def __init__(self, config: MlpConfig):
        self.config = config
        super().__init__([Dimension("depth", tuple(range(1, config.max_depth + 1))),
                          Dimension("width", config.widths, config.max_depth)])

    def inactive(self, values) -> dict[str, set[int]]:
        return {"width": set(range(values["depth"], self.config.max_depth))}

    def cardinality(self) -> int:
        """Distinct archs: ``sum over depth d of widths^d``."""
        return sum(len(self.config.widths) ** d for d in range(1, self.config.max_depth + 1))

    def input_shape(self, arch: Arch) -> tuple[int, ...]:
        """Flat features: ``(in_features,)``."""
        return (self.config.in_features,)

    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((batch, *self.input_shape(arch)), generator=generator)

    def build_static(self, arch: Arch) -> nn.Module:
        return static_mlp(self.config, arch)


def static_mlp(config: MlpConfig, arch: Arch) -> nn.Sequential:
    """The plain network of ``arch``: ``depth`` x (Linear, GELU), then the classifier."""
    layers, width = [], config.in_features
    for i in range(arch["depth"]):
        layers += [nn.Linear(width, arch["width"][i]), nn.GELU()]
        width = arch["width"][i]
    return nn.Sequential(*layers, nn.Linear(width, config.num_classes))


class MlpSupernet(nn.Module):
    """The largest MLP; an arch uses the first ``width[i]`` units of each of its first ``depth`` layers."""

    def __init__(self, config: MlpConfig):
        super().__init__()
        self.config, self.space = config, MlpSpace(config)
        widest = max(config.widths)
        sizes = [config.in_features] + [widest] * config.max_depth
        self.hidden = nn.ModuleList(ElasticLinear(sizes[i], sizes[i + 1]) for i in range(config.max_depth))
        self.head = ElasticLinear(widest, config.num_classes)

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Inputs as they are: flat features ``(B, in_features)``."""
        return x

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        for i in range(arch["depth"]):
            x = nn.functional.gelu(self.hidden[i](x, arch["width"][i]))  # (B, width_i)
        return self.head(x)  # (B, num_classes)

    def extract(self, arch: Arch) -> nn.Sequential:
        net, width = static_mlp(self.config, arch), self.config.in_features
        state = {}
        for i in range(arch["depth"]):
            state.update({f"{2 * i}.{k}": v for k, v in self.hidden[i].sliced(width, arch["width"][i]).items()})
            width = arch["width"][i]
        head = self.head.sliced(width, self.config.num_classes)
        state.update({f"{2 * arch['depth']}.{k}": v for k, v in head.items()})
        net.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return net


def fit_data(config: MlpConfig, info, options=None) -> MlpConfig:
    """The data's features (one flat input per example) and classes."""
    if len(info.sample_shape) != 1:
        raise SupernetError(f"elastic_mlp takes flat features (N, F); the data {info.name!r} has inputs of shape "
                            f"{tuple(info.sample_shape)}: reshape them to (N, F) first")
    return replace(config, in_features=info.sample_shape[0], num_classes=info.num_classes or config.num_classes)


register_space("elastic_mlp", {"tiny": MlpConfig(in_features=12, num_classes=3, widths=(8, 16), max_depth=2),
                               "digits": MlpConfig()},
               config_cls=MlpConfig, build_space=MlpSpace, build_supernet=MlpSupernet,
               build_static=static_mlp, default_variant="digits", task="classification", fit_data=fit_data)
