"""The contract of a search space: everything the engine calls on a space, its supernet, an evaluator,
a predictor and a generating subnet, with the default of every optional part, in this one file.

A new space is one file that implements :class:`SpaceProtocol` and :class:`SupernetProtocol`,
registers itself with :func:`supernet.core.registry.register_space` (a ``tiny`` variant, its task
kind, optionally ``choose_variant`` / ``fit_data`` / ``options``; a name no other file registers) and
is named in the ``supernet.spaces`` entry-point group or in ``SUPERNET_SPACES`` (a module name or a
``.py`` path; a path is imported again in every process the engine spawns).
:func:`supernet.core.contract_check.contract_problems` checks a registered space against every
rule (``contract_check.RULES``), each problem prefixed by the rule's name; the shared tests run it
on every space. ``docs/example_space.py`` is a worked example (an elastic MLP over flat features).

Required members are read off the two protocols (:func:`required`); optional ones are the
:data:`HOOKS`, each with its owner and its default, which :func:`hook` supplies when an owner leaves
one out. The engine finds an optional member only through :func:`hook`; it never probes with
``hasattr``. Nothing else is assumed of a space: the config may name its fields freely (no
``num_classes`` is read), and any activation works (a ReLU unit that is dead on one batch is not
a missing gradient: the shared gradient check counts against the static subnet on the same batch).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .arch import Arch


@runtime_checkable
class SpaceProtocol(Protocol):
    """A space (a :class:`supernet.core.space.SearchSpace` subclass gives all but the last three and
    ``config``).

    ``config`` is the config the space was built from (``build_space(config)``): latency tables
    record it, so a table is never used for another variant. ``inactive(values)`` names the
    positions an arch leaves unused (e.g. the widths of layers beyond its depth), so that archs
    differing only there compare equal; the checker flags an unused position left undeclared.
    ``input_shape(arch)`` is one input of the static subnet without the batch axis, any rank
    (``(64,)`` flat features, ``(3, 224, 224)`` an image, ``(T,)`` token ids);
    ``example_input(arch, batch, generator)`` a batch of it; ``build_static(arch)`` a fresh static
    module with the state-dict keys of ``extract(arch)`` (latency is measured on it).
    """

    config: Any

    def sample(self, rng: np.random.Generator) -> Arch: ...
    def smallest(self) -> Arch: ...
    def largest(self) -> Arch: ...
    def median(self) -> Arch: ...
    def make(self, values) -> Arch: ...
    def load_arch(self, text_or_path: str) -> Arch: ...
    def encode(self, arch: Arch) -> np.ndarray: ...
    def decode(self, x) -> Arch: ...
    def cardinality(self) -> int: ...
    def inactive(self, values) -> dict[str, set[int]]: ...
    def input_shape(self, arch: Arch) -> tuple[int, ...]: ...
    def example_input(self, arch: Arch, batch: int = 1, generator: torch.Generator | None = None) -> torch.Tensor: ...
    def build_static(self, arch: Arch) -> torch.nn.Module: ...


@runtime_checkable
class SupernetProtocol(Protocol):
    """A supernet (a ``torch.nn.Module``).

    ``config``: a dataclass, or with ``to_dict()`` and a ``config_cls.from_dict``; it must round-trip.
    ``prepare_input(x, arch)``: the static subnet's input ``(batch, *input_shape(arch))`` from a batch as
    the data gives it (resized to the arch's resolution, a channel axis added, flattened...); say what it
    does in the ``preprocessing`` hook (else ``arch.json`` describes the shapes it saw change).
    ``forward(x, arch)``: outputs whose last axis the task distils over (``x`` as prepare_input returns
    it). ``extract(arch)``: a static standalone module computing the same function as forward.
    """

    space: SpaceProtocol
    config: Any

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor: ...
    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor: ...
    def extract(self, arch: Arch) -> torch.nn.Module: ...


@runtime_checkable
class EvaluatorProtocol(Protocol):
    """What a search evaluates with: ``evaluate_many(archs) -> results`` (one per arch, in order: a
    metrics mapping or a :class:`supernet.evaluation.evaluators.Failure`). Optional: ``evaluate_iter``
    (:data:`HOOKS`). A plain callable ``arch -> metrics`` is wrapped by
    :func:`supernet.evaluation.evaluators.as_evaluator`."""

    def evaluate_many(self, archs: Sequence[Arch]) -> list: ...


def required(protocol: type) -> tuple[str, ...]:
    """The members a protocol requires: its annotated attributes, then its methods, in declaration order."""
    attrs = [n for n in protocol.__dict__.get("__annotations__", {})]
    methods = [n for n, v in protocol.__dict__.items() if callable(v) and not n.startswith("_")]
    return tuple(attrs + methods)


# -- optional hooks and their defaults --------------------------------------------------------
@dataclass(frozen=True)
class Hook:
    """An optional member: who may define it, and ``default(owner)``, what the engine uses when the owner
    does not (a function, a value, or None: the engine's own behaviour). ``attribute``: a value, not a
    method."""

    owner: str  # "space" | "supernet" | "evaluator" | "predictor" | "subnet" (a generating static module)
    default: Callable[[Any], Any]
    attribute: bool = False


def _no_units(*args) -> list:
    return []


HOOKS: dict[str, Hook] = {
    # supernet.flops(arch) / params(arch): exact multiply-adds and parameters (default: counted on
    # extract(arch) with torch.utils.flop_counter, memoised per arch; the checker compares a space's own)
    "flops": Hook("supernet", lambda net: derived_costs(net)[0]),
    "params": Hook("supernet", lambda net: derived_costs(net)[1]),
    # before_training(batches): once before step 0 of a fresh run (e.g. channel reordering)
    "before_training": Hook("supernet", lambda net: lambda batches: None),
    # export_files(arch, folder, final) -> dict: the space's own export format (None: safetensors + ONNX)
    "export_files": Hook("supernet", lambda net: None),
    # teacher() -> None, or a frozen x -> logits (raw batches) that every arch of a training step distils from
    # instead of the step's largest arch (e.g. the pretrained model a space starts from; default: in place)
    "teacher": Hook("supernet", lambda net: lambda: None),
    # trainable_params(arch): the trainable parameters the arch uses (default: params(arch))
    "trainable_params": Hook("supernet", lambda net: hook(net, "params")),
    # subnet_view(arch): what evaluation scores and recalibrates, taking prepare_input's output (an LLM
    # returns a view through the supernet itself, so eval holds one copy of the base weights)
    "subnet_view": Hook("supernet", lambda net: net.extract),
    # preprocessing(arch) -> the line arch.json shows for what prepare_input does to data (default: None,
    # described by export from the shapes prepare_input changes: see describe_preprocessing)
    "preprocessing": Hook("supernet", lambda net: None),
    # eval_batch_size() -> examples per evaluation batch
    "eval_batch_size": Hook("supernet", lambda net: lambda: 500),
    # space.load_exported(folder): the module of an export in the space's own format (None: the engine's)
    "load_exported": Hook("space", lambda space: None),
    # space.input_size(): the square side streamed images are decoded to (None: as stored)
    "input_size": Hook("space", lambda space: lambda: None),
    # space.latency_units(arch) / all_latency_units(): [(key, build() -> module, input shape without batch)]
    # of a latency table (default none: latency is measured on whole subnets)
    "latency_units": Hook("space", lambda space: _no_units),
    "all_latency_units": Hook("space", lambda space: _no_units),
    # evaluator.evaluate_iter(archs): results one by one as they finish (default: evaluate_many's, at the end)
    "evaluate_iter": Hook("evaluator", lambda ev: lambda archs: iter(ev.evaluate_many(archs))),
    # predictor.chosen: after fit, which model an automatic predictor chose (logged; default None)
    "chosen": Hook("predictor", lambda predictor: None, attribute=True),
    # predictor.refit(archs, y) -> a new fitted predictor keeping this one's chosen model (no new choice): what a
    # cheap search calls between its choice rounds (supernet.nas.pace; default None: a fresh fit every round)
    "refit": Hook("predictor", lambda predictor: None),
    # predictor.quick(archs, y) -> a new predictor fitted without its costly model choice (auto: its first
    # candidate): what a cheap search fits before its first choice round (supernet.nas.pace; default None)
    "quick": Hook("predictor", lambda predictor: None),
    # subnet.prefill(ids) -> state and subnet.decode(state) -> state: a generating module (an LLM's),
    # timed by --latency-mode generate (default None: the subnet does not generate)
    # space.max_tokens() -> the most token positions a subnet's input may hold, prompt and generated tokens
    # together (default None: not bounded; an LLM's max_position_embeddings)
    "max_tokens": Hook("space", lambda space: lambda: None),
    # space.named_archs() -> [(name, arch values)]: archs the space can name, e.g. OFA's published picks as
    # ofa:ID, for `search --compare ofa:all` (default none)
    "named_archs": Hook("space", lambda space: _no_units),
    "prefill": Hook("subnet", lambda module: None),
    "decode": Hook("subnet", lambda module: None),
}
SPACE_HOOKS = tuple(n for n, h in HOOKS.items() if h.owner == "space")
SUPERNET_HOOKS = tuple(n for n, h in HOOKS.items() if h.owner == "supernet")


def hook(owner: Any, name: str):
    """The optional member ``name`` of ``owner``: its own, else the declared default of :data:`HOOKS`
    (a function, or None for ``export_files`` / ``load_exported`` / ``preprocessing``: the engine's own
    way, and for ``prefill`` / ``decode`` of a module that does not generate)."""
    spec = HOOKS[name]
    own = getattr(owner, name, None)
    if spec.attribute:
        return own if own is not None else spec.default(owner)
    return own if callable(own) else spec.default(owner)


def results_of(evaluator: EvaluatorProtocol, archs: Sequence[Arch]) -> Iterator:
    """The evaluator's results for ``archs`` as they come (its ``evaluate_iter``, else ``evaluate_many``)."""
    return iter(hook(evaluator, "evaluate_iter")(archs))


def describe_preprocessing(net: torch.nn.Module, arch: Arch, sample_shape: Sequence[int] | None = None) -> str:
    """The ``preprocessing`` line of ``arch.json``: the supernet's own hook, else what ``prepare_input`` is
    seen doing to a batch of the data's ``sample_shape`` (default: the arch's input shape): ``"none"``
    when it returns the batch unchanged, else the shapes (or values) it changes."""
    own = hook(net, "preprocessing")
    if own is not None:
        return own(arch)
    shape = tuple(net.space.input_shape(arch))
    sample = tuple(sample_shape) if sample_shape is not None else shape
    x = net.space.example_input(arch, 2, torch.Generator().manual_seed(0))
    if sample != shape:
        if int(np.prod(sample)) == int(np.prod(shape)):
            x = x.reshape(2, *sample)
        elif x.is_floating_point():
            x = torch.randn((2, *sample), generator=torch.Generator().manual_seed(0), dtype=x.dtype)
        else:
            return f"prepare_input turns each example of shape {sample} into {shape}"
    weight = next(iter(net.parameters()), None)
    x = x.to(weight.device) if weight is not None else x
    with torch.no_grad():
        y = net.prepare_input(x, arch)
    if tuple(y.shape) == tuple(x.shape) and torch.equal(y, x):
        return "none"
    change = (f"each example of shape {sample} into {tuple(y.shape[1:])}" if tuple(y.shape[1:]) != sample
              else "the values of each example (same shape)")
    return f"prepare_input turns {change}; the space does not say more (a preprocessing(arch) hook would)"


_DERIVED: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()


def derived_costs(net: torch.nn.Module) -> tuple[Callable[[Arch], int], Callable[[Arch], int]]:
    """``(flops, params)`` of a supernet's archs counted on ``extract(arch)``: multiply-adds of one
    example input (``FlopCounterMode`` FLOPs / 2: matmuls, convolutions, attention products) and the
    static subnet's parameters. Memoised per supernet and arch (the search asks for thousands)."""
    if net not in _DERIVED:
        _DERIVED[net] = _counters(net)
    return _DERIVED[net]


def counted_costs(static: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """``(multiply-adds, parameters)`` of a static module on one input ``x`` (the math attention kernel,
    whose products the counter sees)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        static(x)
    return counter.get_total_flops() // 2, sum(p.numel() for p in static.parameters())


def _counters(net: torch.nn.Module) -> tuple[Callable[[Arch], int], Callable[[Arch], int]]:
    @lru_cache(maxsize=65536)
    def counted(arch: Arch) -> tuple[int, int]:
        static = net.extract(arch).eval()
        return counted_costs(static, net.space.example_input(arch, 1, torch.Generator().manual_seed(0)))
    return (lambda arch: counted(arch)[0]), (lambda arch: counted(arch)[1])

