"""The contract checker: every rule of :mod:`supernet.core.contract` a registered space breaks, by name.

Each problem reads ``"<rule>: <what is wrong>"``; :data:`RULES` states every rule in one line. The
checks run on the space's smallest and largest archs (costs, units and unused positions included)
and never raise for a broken space: an error of the space's own code is reported under the rule
whose check raised it.
"""
from __future__ import annotations

import dataclasses

import torch

from .arch import Arch
from .contract import (HOOKS, SpaceProtocol, SupernetProtocol, counted_costs, hook, required)
from .errors import SupernetError

RULES = {
    "task": "the registered task kind is one of supernet.core.task.TASKS",
    "config": "the config is a dataclass (or has to_dict() and config_cls.from_dict()) and round-trips",
    "options": "options, when given, are a SpaceOptions dataclass that builds from its defaults",
    "supernet": "build_supernet returns a torch.nn.Module with every member of SupernetProtocol",
    "space": "supernet.space has every member of SpaceProtocol (config included)",
    "hooks": "an optional hook a space or supernet defines is callable",
    "encoding": "decode(encode(arch)) == arch and make(arch.to_dict()) == arch",
    "example-input": "example_input(arch, B) has shape (B, *input_shape(arch))",
    "prepare-input": "prepare_input returns (batch, *input_shape(arch))",
    "static-build": "build_static(arch) and extract(arch) build, with the same state-dict keys",
    "extract": "extract(arch) runs on (batch, *input_shape(arch)) and equals forward",
    "flops": "the supernet's own flops(arch) equals the multiply-adds counted on extract(arch)",
    "params": "the supernet's own params(arch) equals the parameters of extract(arch)",
    "inactive": "a position an arch leaves unused is declared by inactive(values)",
    "latency-units": "each latency unit's module runs on (1, *its declared input shape)",
}


def problem(rule: str, text: str) -> str:
    assert rule in RULES, rule
    return f"{rule}: {text}"


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def contract_problems(name: str, variant: str) -> list[str]:
    """Every way the registered space ``name``/``variant`` breaks the contract (empty: none), each
    prefixed by the name of the rule it breaks (:data:`RULES`)."""
    from .registry import build_supernet, get_space, space_config
    from .task import TASKS
    entry = get_space(name)
    problems = [] if entry.task in TASKS else [problem("task", f"unknown task kind {entry.task!r}")]
    config = space_config(name, variant)
    problems += _config_problems(entry, config)
    model = build_supernet(name, config)
    if not isinstance(model, torch.nn.Module):
        return problems + [problem("supernet", "build_supernet does not return a torch.nn.Module")]
    problems += [problem("supernet", f"supernet lacks {m}") for m in required(SupernetProtocol)
                 if not hasattr(model, m) or (m in SupernetProtocol.__dict__ and not callable(getattr(model, m)))]
    space = getattr(model, "space", None)
    if space is None:
        return problems
    problems += [problem("space", f"space lacks {m}" + ("()" if m in SpaceProtocol.__dict__ else
                                                         " (the config it was built from: latency tables record it)"))
                 for m in required(SpaceProtocol)
                 if not hasattr(space, m) or (m in SpaceProtocol.__dict__ and not callable(getattr(space, m)))]
    owners = {"space": space, "supernet": model}
    problems += [problem("hooks", f"optional hook {h} is not callable") for h, spec in HOOKS.items()
                 if spec.owner in owners and getattr(owners[spec.owner], h, None) is not None
                 and not callable(getattr(owners[spec.owner], h))]
    problems += _options_problems(entry)
    if problems:
        return problems
    if not _round_trips(entry, model.config):
        problems.append(problem("config", "config does not round-trip through to_dict / from_dict (a dataclass "
                                          "does by default)"))
    for arch in (space.smallest(), space.largest()):
        problems += _arch_problems(model, space, arch)
    if not problems:
        problems += _unused_positions(model, space, space.smallest())
    return list(dict.fromkeys(problems))


def _config_problems(entry, config) -> list[str]:
    if dataclasses.is_dataclass(config) or (callable(getattr(config, "to_dict", None))
                                            and callable(getattr(entry.config_cls, "from_dict", None))):
        return []
    return [problem("config", "config must be a dataclass, or define to_dict() with a config_cls.from_dict()")]


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
        return [problem("options", "options must be a SpaceOptions dataclass (supernet.core.options)")]
    try:
        entry.options.from_dict({})
    except Exception as exc:  # noqa: BLE001
        return [problem("options", f"options cannot be built from their defaults ({describe(exc)})")]
    return []


def _arch_problems(model, space, arch: Arch) -> list[str]:
    """Encoding round trips, shapes, the static build, extract == forward, costs and units of one arch."""
    problems, shape = [], tuple(space.input_shape(arch))
    what = "smallest" if arch == space.smallest() else "largest"
    if space.decode(space.encode(arch)) != arch:
        problems.append(problem("encoding", f"decode(encode({what})) != {what}"))
    if space.make(arch.to_dict()) != arch:
        problems.append(problem("encoding", f"make({what}.to_dict()) != {what}"))
    x = space.example_input(arch, 2, torch.Generator().manual_seed(0))
    if tuple(x.shape) != (2, *shape):
        return problems + [problem("example-input", f"example_input shape {tuple(x.shape)} disagrees with "
                                                    f"input_shape {shape} ({what})")]
    try:
        static, extracted = space.build_static(arch), model.extract(arch)
    except Exception as exc:  # noqa: BLE001  (e.g. load_state_dict inside extract: keys that disagree)
        return problems + [problem("static-build", f"build_static({what}) / extract({what}) raise {describe(exc)}")]
    if set(static.state_dict()) != set(extracted.state_dict()):
        only = sorted(set(static.state_dict()) ^ set(extracted.state_dict()))[:3]
        problems.append(problem("static-build", f"build_static and extract have different state-dict keys ({what}; "
                                                f"e.g. {', '.join(only)})"))
    model.eval()
    with torch.no_grad():
        prepared = model.prepare_input(x, arch)
        if tuple(prepared.shape) != (2, *shape):
            return problems + [problem("prepare-input", f"prepare_input turns {tuple(x.shape)} into "
                                       f"{tuple(prepared.shape)}; it must return (batch, *input_shape(arch)) = "
                                       f"(2, {', '.join(map(str, shape))}), the shape the static subnet and its "
                                       f"export take ({what})")]
        try:
            same = torch.allclose(extracted.eval()(prepared).float(), model(prepared, arch).float(), atol=1e-4,
                                  rtol=1e-3)
            extracted(prepared[:1])
        except Exception as exc:  # noqa: BLE001
            return problems + [problem("extract", f"extract({what}) cannot run on (batch, *input_shape): "
                                                  f"{describe(exc)}")]
    if not same:
        problems.append(problem("extract", f"extract({what}) and forward disagree on the same input"))
    return problems + _cost_problems(model, extracted, prepared[:1], arch, what) + _unit_problems(space, arch, what)


def _cost_problems(model, extracted, x, arch: Arch, what: str) -> list[str]:
    """A space's own ``flops`` / ``params`` against the counts on its extracted subnet."""
    own = {name: getattr(model, name) for name in ("flops", "params") if callable(getattr(model, name, None))}
    if not own:
        return []
    counted = dict(zip(("flops", "params"), counted_costs(extracted, x)))
    return [problem(name, f"{name}({what}) = {fn(arch)}, but extract({what}) counts {counted[name]} "
                          f"({'multiply-adds of one example' if name == 'flops' else 'parameters'})")
            for name, fn in own.items() if int(fn(arch)) != counted[name]]


def _unit_problems(space, arch: Arch, what: str) -> list[str]:
    problems = []
    for key, build, shape in hook(space, "latency_units")(arch):
        try:
            with torch.no_grad():
                build().eval()(torch.zeros((1, *tuple(shape))))
        except Exception as exc:  # noqa: BLE001
            problems.append(problem("latency-units", f"unit {key!r} of {what} cannot run on its declared input "
                                                     f"shape (1, {', '.join(map(str, shape))}): {describe(exc)}"))
    return problems


def _unused_positions(model, space, arch: Arch) -> list[str]:
    """Positions of ``arch`` (the smallest: the most unused) that change nothing yet are not declared
    inactive: the last position of each list dimension set to another choice, the same network."""
    x = space.example_input(arch, 2, torch.Generator().manual_seed(0))
    base = model.extract(arch).eval()
    problems = []
    for dim in space.dimensions:
        if dim.length is None:
            continue
        values, i = arch.to_dict(), dim.length - 1
        seq = list(values[dim.name])
        other = next((c for c in reversed(dim.ordered_choices()) if c != seq[i]), None)
        if other is None:
            continue
        values[dim.name] = seq[:i] + [other] + seq[i + 1:]
        try:
            changed = space.make(values)
        except SupernetError:
            continue
        if changed == arch or tuple(space.input_shape(changed)) != tuple(space.input_shape(arch)):
            continue
        static = model.extract(changed).eval()
        if _same_network(base, static, model.prepare_input(x, arch)):
            problems.append(problem("inactive", f"{dim.name}[{i}] changes nothing in the smallest arch (the same "
                                                f"network for {seq[i]!r} and {other!r}) but inactive() does not "
                                                f"declare it; archs that differ only there must compare equal"))
    return problems


def _same_network(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    if set(sa) != set(sb) or any(sa[k].shape != sb[k].shape for k in sa):
        return False
    with torch.no_grad():
        return torch.equal(a(x), b(x))
