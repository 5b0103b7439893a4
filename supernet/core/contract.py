"""The contract of a search space: everything the engine calls on a space and its supernet.

A new space is one file that implements the two protocols below, registers itself with
:func:`supernet.core.registry.register_space` (a ``tiny`` variant, its task kind, optionally
``choose_variant`` / ``fit_data`` / ``options``) and is named in the ``supernet.spaces``
entry-point group or in ``SUPERNET_SPACES``. :func:`contract_problems` checks a registered
space against every rule below; the shared tests run it on every space. ``docs/example_space.py``
is a worked example (an elastic MLP over flat features).

Space (a :class:`supernet.core.space.SearchSpace` subclass), required:
    sample(rng), smallest(), largest(), median(), make(values), load_arch(text),
    encode(arch) -> int array, decode(x), cardinality(), inactive(values),
    input_shape(arch) -> the shape of one input of the arch's static subnet, no batch axis, any rank
        (``(64,)`` flat features, ``(3, 224, 224)`` an image, ``(T,)`` token ids),
    example_input(arch, batch, generator) -> a batch of that shape ``(batch, *input_shape(arch))``,
    build_static(arch) -> fresh static module (latency), with the state-dict keys of ``extract``.

Supernet (a ``torch.nn.Module``), required:
    space, config (a dataclass, or with ``to_dict()`` and a ``config_cls.from_dict``: it must round-trip),
    prepare_input(x, arch) -> the static subnet's input, shape ``(batch, *input_shape(arch))``, from a
        batch as the data gives it (e.g. resized to the arch's resolution, a channel axis added),
    forward(x, arch) -> outputs whose last axis the task distils over (``x`` as prepare_input returns it),
    extract(arch) -> static standalone module computing the same function as forward.

Optional hooks (:data:`HOOKS`; the engine calls them through :func:`hook`, which supplies the
default below when a space leaves one out):
    supernet.flops(arch), supernet.params(arch) -> exact multiply-adds and parameters
        (default: counted on ``extract(arch)`` with ``torch.utils.flop_counter``, memoised per arch);
    supernet.before_training(batches) -> None: once, before step 0 of a fresh run (e.g. channel
        reordering; default: nothing);
    supernet.teacher() -> None, or a frozen ``x -> logits`` (raw batches) that every arch of a training step
        distils from instead of the step's largest arch (e.g. the pretrained model a space starts from;
        default: None, in-place distillation);
    supernet.export_files(arch, folder, final) -> dict: the space's own export format written into
        ``folder`` (default: None, the engine writes ``model.safetensors`` and ``model.onnx``);
    supernet.trainable_params(arch) -> trainable parameters the arch uses (default: ``params(arch)``);
    supernet.subnet_view(arch) -> the module that evaluation scores (and recalibrates) for ``arch``, taking
        ``prepare_input``'s output (default: ``extract(arch)``); a space whose static subnet would copy a
        large frozen base (an LLM) returns a view that computes the arch through the supernet itself, so
        eval and search hold one copy of the weights;
    supernet.preprocessing(arch) -> one line for ``arch.json`` saying what ``prepare_input`` does
        (default: ``"none"``);
    supernet.eval_batch_size() -> examples per evaluation batch (default: 500); a space whose outputs per
        example are large (an LLM's logits: sequence x vocabulary) bounds its evaluation memory with it;
    space.load_exported(folder) -> the module of an export in the space's own format (default: None,
        the engine loads ``model.safetensors`` into ``build_static``);
    space.input_size() -> the square side that streamed image data is decoded to (default: None, as stored);
    space.latency_units(arch), space.all_latency_units() -> units of a latency table (default: none,
        so latency is measured on whole subnets);
    space.named_archs() -> the names beyond ``largest|smallest|median`` that ``load_arch`` takes and that are
        archs of this space (default: none; mobilenet: ``ofa:ID`` of each OFA pick that fits), which
        ``supernet search --compare PREFIX:all`` expands to.
"""
from __future__ import annotations

import dataclasses
import weakref
from functools import lru_cache
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch

from .arch import Arch

SPACE_METHODS = ("sample", "smallest", "largest", "median", "make", "load_arch", "encode", "decode", "cardinality",
                 "inactive", "input_shape", "example_input", "build_static")
SUPERNET_METHODS = ("prepare_input", "forward", "extract")


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


@runtime_checkable
class SupernetProtocol(Protocol):
    space: Any
    config: Any

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor: ...
    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor: ...
    def extract(self, arch: Arch) -> torch.nn.Module: ...


# -- optional hooks and their defaults --------------------------------------------------------
def _no_units(*args) -> list:
    return []


HOOKS: dict[str, Callable[[Any], Callable]] = {
    # name -> default(owner) returning the function the engine calls
    "flops": lambda net: derived_costs(net)[0],
    "params": lambda net: derived_costs(net)[1],
    "before_training": lambda net: lambda batches: None,
    "export_files": lambda net: None,
    "teacher": lambda net: lambda: None,
    "trainable_params": lambda net: hook(net, "params"),
    "subnet_view": lambda net: net.extract,
    "preprocessing": lambda net: lambda arch: "none",
    "eval_batch_size": lambda net: lambda: 500,
    "load_exported": lambda space: None,
    "input_size": lambda space: lambda: None,
    "latency_units": lambda space: _no_units,
    "all_latency_units": lambda space: _no_units,
    "named_archs": lambda space: _no_units,
}
SPACE_HOOKS = ("load_exported", "input_size", "latency_units", "all_latency_units", "named_archs")  # the others: the supernet's


def hook(owner: Any, name: str):
    """The optional hook ``name`` of a space or supernet: its own method, else the declared default
    (a function, or None for ``export_files`` / ``load_exported``: the engine's format)."""
    own = getattr(owner, name, None)
    return own if callable(own) else HOOKS[name](owner)


_DERIVED: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()


def derived_costs(net: torch.nn.Module) -> tuple[Callable[[Arch], int], Callable[[Arch], int]]:
    """``(flops, params)`` of a supernet's archs counted on ``extract(arch)``: multiply-adds of one
    example input (``FlopCounterMode`` FLOPs / 2: matmuls, convolutions, attention products) and the
    static subnet's parameters. Memoised per supernet and arch (the search asks for thousands)."""
    if net not in _DERIVED:
        _DERIVED[net] = _counters(net)
    return _DERIVED[net]


def _counters(net: torch.nn.Module) -> tuple[Callable[[Arch], int], Callable[[Arch], int]]:
    @lru_cache(maxsize=65536)
    def counted(arch: Arch) -> tuple[int, int]:
        from torch.utils.flop_counter import FlopCounterMode
        static = net.extract(arch).eval()
        x = net.space.example_input(arch, 1, torch.Generator().manual_seed(0))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            static(x)
        return counter.get_total_flops() // 2, sum(p.numel() for p in static.parameters())
    return (lambda arch: counted(arch)[0]), (lambda arch: counted(arch)[1])


# -- the checker --------------------------------------------------------------------------------
def contract_problems(name: str, variant: str) -> list[str]:
    """Every way the registered space ``name``/``variant`` breaks the contract (empty: none)."""
    from .registry import build_supernet, get_space, space_config
    from .task import TASKS
    entry = get_space(name)
    problems = [] if entry.task in TASKS else [f"unknown task kind {entry.task!r}"]
    config = space_config(name, variant)
    problems += _config_problems(entry, config)
    model = build_supernet(name, config)
    if not isinstance(model, torch.nn.Module):
        return problems + ["build_supernet does not return a torch.nn.Module"]
    problems += [f"supernet lacks {m}()" for m in SUPERNET_METHODS if not callable(getattr(model, m, None))]
    space = getattr(model, "space", None)
    if space is None:
        return problems + ["supernet has no .space"]
    problems += [f"space lacks {m}()" for m in SPACE_METHODS if not callable(getattr(space, m, None))]
    owners = {h: space if h in SPACE_HOOKS else model for h in HOOKS}
    problems += [f"optional hook {h} is not callable" for h, owner in owners.items()
                 if getattr(owner, h, None) is not None and not callable(getattr(owner, h))]
    problems += _options_problems(entry)
    if problems:
        return problems
    if not _round_trips(entry, model.config):
        problems.append("config does not round-trip through to_dict / from_dict (a dataclass does by default)")
    for arch in (space.smallest(), space.largest()):
        problems += _arch_problems(model, space, arch)
    return list(dict.fromkeys(problems))


def _config_problems(entry, config) -> list[str]:
    if dataclasses.is_dataclass(config) or (callable(getattr(config, "to_dict", None))
                                            and callable(getattr(entry.config_cls, "from_dict", None))):
        return []
    return ["config must be a dataclass, or define to_dict() with a config_cls.from_dict()"]


def _round_trips(entry, config) -> bool:
    from .registry import config_from_dict, config_to_dict
    try:
        return config_from_dict(entry.name, config_to_dict(config)) == config
    except Exception:  # noqa: BLE001  (any failure is the problem reported)
        return False


def _options_problems(entry) -> list[str]:
    from .options import SpaceOptions
    if entry.options is None:
        return []
    if not (isinstance(entry.options, type) and issubclass(entry.options, SpaceOptions)):
        return ["options must be a SpaceOptions dataclass (supernet.core.options)"]
    try:
        entry.options.from_dict({})
    except Exception as exc:  # noqa: BLE001
        return [f"options cannot be built from their defaults ({type(exc).__name__}: {exc})"]
    return []


def _arch_problems(model, space, arch: Arch) -> list[str]:
    """Shapes, encoding round trips and extract == forward for one arch."""
    problems, shape = [], tuple(space.input_shape(arch))
    what = "smallest" if arch == space.smallest() else "largest"
    if space.decode(space.encode(arch)) != arch:
        problems.append(f"decode(encode({what})) != {what}")
    if space.make(arch.to_dict()) != arch:
        problems.append(f"make({what}.to_dict()) != {what}")
    x = space.example_input(arch, 2, torch.Generator().manual_seed(0))
    if tuple(x.shape) != (2, *shape):
        return problems + [f"example_input shape {tuple(x.shape)} disagrees with input_shape {shape} ({what})"]
    static = space.build_static(arch)
    extracted = model.extract(arch)
    if set(static.state_dict()) != set(extracted.state_dict()):
        problems.append(f"build_static and extract have different state-dict keys ({what})")
    model.eval()
    with torch.no_grad():
        prepared = model.prepare_input(x, arch)
        if tuple(prepared.shape) != (2, *shape):
            return problems + [f"prepare_input turns {tuple(x.shape)} into {tuple(prepared.shape)}; it must return "
                               f"(batch, *input_shape(arch)) = (2, {', '.join(map(str, shape))}), the shape the "
                               f"static subnet and its export take ({what})"]
        try:
            same = torch.allclose(extracted.eval()(prepared).float(), model(prepared, arch).float(), atol=1e-4,
                                  rtol=1e-3)
            extracted(prepared[:1])
        except Exception as exc:  # noqa: BLE001
            return problems + [f"extract({what}) cannot run on (batch, *input_shape): {type(exc).__name__}: {exc}"]
    if not same:
        problems.append(f"extract({what}) and forward disagree on the same input")
    return problems
