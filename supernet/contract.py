"""The contract of a search space: everything the engine calls on a space and its supernet.

A new space is one file that implements these two protocols, registers itself with
:func:`supernet.registry.register_space` (with a ``tiny`` variant and its task kind) and is
named in the ``supernet.spaces`` entry-point group. :func:`contract_problems` checks a
registered space against the contract; the shared tests run it on every space.

Space (a :class:`supernet.arch.SearchSpace` subclass) — sampling, encoding and what
latency measurement and export need:
    sample(rng), smallest(), largest(), median(), make(values), load_arch(text),
    encode(arch) -> int array, decode(x), cardinality(), inactive(values),
    input_shape(arch) -> shape of one input (no batch axis),
    example_input(arch, batch, generator) -> a batch the static subnet accepts,
    build_static(arch) -> fresh static module (latency), latency_units(arch),
    all_latency_units() -> (key, build, input shape) of every unit a table times.

Supernet (a ``torch.nn.Module``):
    space, config (with ``to_dict()``; rebuilt by the entry's ``config_cls.from_dict``),
    prepare_input(x, arch) -> the input the arch sees (e.g. resized to its resolution),
    forward(x, arch) -> outputs whose last axis the task distils over,
    extract(arch) -> static standalone module equal to forward,
    flops(arch), params(arch) -> exact multiply-adds and parameters.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from .arch import Arch

SPACE_METHODS = ("sample", "smallest", "largest", "median", "make", "load_arch", "encode", "decode", "cardinality",
                 "inactive", "input_shape", "example_input", "build_static", "latency_units", "all_latency_units")
SUPERNET_METHODS = ("prepare_input", "forward", "extract", "flops", "params")


@runtime_checkable
class SpaceProtocol(Protocol):
    def sample(self, rng: np.random.Generator) -> Arch: ...
    def smallest(self) -> Arch: ...
    def largest(self) -> Arch: ...
    def encode(self, arch: Arch) -> np.ndarray: ...
    def decode(self, x) -> Arch: ...
    def input_shape(self, arch: Arch) -> tuple[int, ...]: ...
    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor: ...
    def build_static(self, arch: Arch) -> torch.nn.Module: ...
    def latency_units(self, arch: Arch) -> list: ...


@runtime_checkable
class SupernetProtocol(Protocol):
    space: Any
    config: Any

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor: ...
    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor: ...
    def extract(self, arch: Arch) -> torch.nn.Module: ...
    def flops(self, arch: Arch) -> int: ...
    def params(self, arch: Arch) -> int: ...


def contract_problems(name: str, variant: str) -> list[str]:
    """Every way the registered space ``name``/``variant`` breaks the contract (empty: none)."""
    from .registry import build_supernet, get_space, space_config
    from .task import TASKS
    entry = get_space(name)
    problems = [] if entry.task in TASKS else [f"unknown task kind {entry.task!r}"]
    config = space_config(name, variant)
    model = build_supernet(name, config)
    if not isinstance(model, torch.nn.Module):
        return problems + ["build_supernet does not return a torch.nn.Module"]
    problems += [f"supernet lacks {m}()" for m in SUPERNET_METHODS if not callable(getattr(model, m, None))]
    space = getattr(model, "space", None)
    if space is None:
        return problems + ["supernet has no .space"]
    problems += [f"space lacks {m}()" for m in SPACE_METHODS if not callable(getattr(space, m, None))]
    if problems:
        return problems
    if entry.config_cls.from_dict(model.config.to_dict()) != config:
        problems.append("config does not round-trip through to_dict / config_cls.from_dict")
    arch = space.smallest()
    if space.decode(space.encode(arch)) != arch:
        problems.append("decode(encode(smallest)) != smallest")
    if space.make(arch.to_dict()) != arch:
        problems.append("make(arch.to_dict()) != arch")
    x = space.example_input(arch, 2, torch.Generator().manual_seed(0))
    if tuple(x.shape[1:]) != tuple(space.input_shape(arch)) or x.shape[0] != 2:
        problems.append(f"example_input shape {tuple(x.shape)} disagrees with input_shape {space.input_shape(arch)}")
    static = space.build_static(arch)
    if set(static.state_dict()) != set(model.extract(arch).state_dict()):
        problems.append("build_static(arch) and extract(arch) have different state-dict keys")
    return problems
