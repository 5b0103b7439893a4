"""Search spaces register here by name, each with named variants (one called ``tiny``).

A space module calls :func:`register_space` at import time. The engine never imports a
concrete space: lookups import, once, every module named in the ``supernet.spaces``
entry-point group of the installed packages (this project's ``setup.cfg`` names
``search_spaces.mobilenet`` and ``search_spaces.llm_lora``; a third-party package adds its
own the same way), plus the entries of the ``SUPERNET_SPACES`` environment variable
(comma-separated module names importable from ``sys.path``, or paths of ``.py`` files), for a
space used without installing it. A script may also call :func:`register_space` itself. A name
belongs to one source (module and file): a second source registering a taken name is an error
naming both; the same source registering again (a module imported again) replaces its own entry.
A process the engine spawns (fresh-process latency sessions) imports the same ``.py`` files first
(:func:`space_files`, :func:`load_space_files`), so a space loaded from a path unpickles there.
What a space must provide is declared in :mod:`supernet.core.contract`.

Torch-free: the CLI reads the registry's names without importing torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .data_info import DataInfo
from .errors import SupernetError


@dataclass(frozen=True)
class SpaceEntry:
    """A registered space: its variants and how to build it.

    ``choose_variant(info) -> name | None`` picks a variant for the data (None: the default);
    ``fit_data(config, info, options) -> config`` adapts a variant's config to the data (classes,
    channels, sequence length, base model); ``options`` is the class of the space's own training
    options (:class:`supernet.core.options.SpaceOptions`), None when it has none; ``train_defaults``
    the engine's training options it defaults otherwise (those of
    ``supernet.training.train_config.ENGINE_DEFAULTS``: e.g. label smoothing 0 and the training schedule
    of a language model), which a user's value overrides.
    """

    name: str
    variants: dict[str, Any]
    config_cls: type
    build_space: Callable[[Any], Any]
    build_supernet: Callable[[Any], Any]
    build_static: Callable[[Any, Any], Any]
    default_variant: str
    task: str = "classification"
    choose_variant: Callable[[DataInfo], str | None] | None = None
    fit_data: Callable[[Any, DataInfo, Any], Any] | None = None
    options: type | None = None
    train_defaults: dict = dataclasses.field(default_factory=dict)
    source: str = ""  # "module (file)" that registered it

    def variant_for(self, info: DataInfo) -> str:
        """The variant the space chooses for data described by ``info`` (else its default)."""
        chosen = self.choose_variant(info) if self.choose_variant is not None else None
        return chosen if chosen in self.variants else self.default_variant

    def fitted(self, config: Any, info: DataInfo, options: Any = None) -> Any:
        """``config`` adapted to the data (unchanged when the space declares no ``fit_data``)."""
        return config if self.fit_data is None else self.fit_data(config, info, options)

    def make_options(self, values: dict | None):
        """The space's training options from ``values`` (checked, paths resolved); None without options."""
        values = dict(values or {})
        if self.options is None:
            if values:
                raise SupernetError(f"space {self.name!r} takes no options of its own, got {sorted(values)}")
            return None
        return self.options.from_dict(values, space=self.name).resolved()


_SPACES: dict[str, SpaceEntry] = {}


def register_space(name: str, variants: dict[str, Any], *, config_cls: type, build_space: Callable,
                   build_supernet: Callable, build_static: Callable, default_variant: str,
                   task: str = "classification", choose_variant: Callable | None = None,
                   fit_data: Callable | None = None, options: type | None = None,
                   train_defaults: dict | None = None) -> None:
    """Register a space: ``build_space(config) -> SearchSpace``, ``build_supernet(config)``,
    ``build_static(config, arch) -> nn.Module`` (fresh weights, same keys as ``extract``),
    the kind of its task (:mod:`supernet.core.task`), and optionally ``choose_variant``,
    ``fit_data``, ``options`` and ``train_defaults`` (see :class:`SpaceEntry`)."""
    if "tiny" not in variants:
        raise ValueError(f"space {name!r} must bring a 'tiny' variant for the shared tests")
    if default_variant not in variants:
        raise ValueError(f"space {name!r}: default variant {default_variant!r} is not one of {sorted(variants)}")
    source = _caller_source()
    taken = _SPACES.get(name)
    if taken is not None and taken.source != source:
        raise SupernetError(f"space {name!r} is registered twice: by {taken.source} and by {source}; give one of "
                            "them another name")
    _SPACES[name] = SpaceEntry(name, dict(variants), config_cls, build_space, build_supernet, build_static,
                               default_variant, task, choose_variant, fit_data, options, dict(train_defaults or {}),
                               source)


def _caller_source() -> str:
    """``"module (file)"`` of the code that called :func:`register_space`."""
    caller = sys._getframe(2).f_globals
    file = caller.get("__file__")
    return f"{caller.get('__name__', '?')} ({Path(file).resolve() if file else 'no file'})"


_IMPORTERS: dict[str, dict[str, Callable]] = {}


def register_importer(source: str, net: str, convert: Callable) -> None:
    """Register how ``supernet import SOURCE --net NET`` reads another project's weights:
    ``convert(weights_path, resolutions) -> (space, variant, config, state_dict)``, ``resolutions``
    None for the net's own. Reads files without executing code; raises SupernetError on bad input."""
    _IMPORTERS.setdefault(source, {})[net] = convert


def importers(source: str | None = None) -> dict:
    """The registered importers: ``{source: {net: convert}}``, or ``{net: convert}`` of ``source``."""
    _load_all()
    return {s: dict(nets) for s, nets in _IMPORTERS.items()} if source is None else dict(_IMPORTERS.get(source, {}))


_LOADED = False
_PROBLEMS: list[str] = []


def space_modules() -> list[str]:
    """Every module (or ``.py`` file) that registers spaces: the entry points, then ``SUPERNET_SPACES``."""
    from importlib.metadata import entry_points
    names = [ep.value for ep in entry_points(group="supernet.spaces")]
    names += [m.strip() for m in os.environ.get("SUPERNET_SPACES", "").split(",") if m.strip()]
    return list(dict.fromkeys(names))


_FILES: dict[str, str] = {}  # resolved path of each .py file imported as a space module -> its module name


def import_space_module(name: str) -> None:
    """Import a module by name, or run a ``.py`` file as a module named after it (and its path), once."""
    if name.endswith(".py"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise SupernetError(f"SUPERNET_SPACES names {name!r}, which is not a file")
        path = path.resolve()
        if str(path) in _FILES:
            return
        module = f"supernet_user_space_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(module, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            sys.modules.pop(module, None)
            raise
        _FILES[str(path)] = module
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise SupernetError(f"cannot import search space module {name!r} ({exc}); put its folder on PYTHONPATH, "
                                "install its package, or give SUPERNET_SPACES the path of its .py file") from None
        raise


def space_files() -> list[str]:
    """The ``.py`` files imported as space modules in this process (for a process it spawns)."""
    return list(_FILES)


def load_space_files(paths: list[str]) -> None:
    """Import the ``.py`` space files ``paths`` not imported yet here (:func:`import_space_module` skips those
    that are): the initializer of a spawned process, so that what the parent pickled from those files (a space)
    unpickles."""
    for path in paths:
        import_space_module(path)


def _load_all() -> None:
    """Import every space module; one that fails is left out and its problem kept (:func:`space_problems`),
    so the other spaces still work."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in space_modules():
        try:
            import_space_module(module)
        except SupernetError as exc:
            _PROBLEMS.append(str(exc))
        except Exception as exc:  # noqa: BLE001  (whatever a user's file raises, named in one line)
            why = (str(exc).strip().splitlines() or [""])[0][:200]
            _PROBLEMS.append(f"search space module {module!r} raised {type(exc).__name__}: {why} while importing; "
                             "its spaces are left out (fix it, or drop it from SUPERNET_SPACES)")


def space_problems() -> list[str]:
    """One line per space module that failed to import (empty until the registry is first used)."""
    return list(_PROBLEMS)


def space_names() -> list[str]:
    _load_all()
    return sorted(_SPACES)


def get_space(name: str) -> SpaceEntry:
    _load_all()
    if name not in _SPACES:
        broken = "".join(f"; {p}" for p in _PROBLEMS)
        raise SupernetError(f"unknown space {name!r}; registered spaces are {sorted(_SPACES)}{broken}")
    return _SPACES[name]


def space_config(name: str, variant: str | None = None, **overrides) -> Any:
    """The config of ``name``/``variant`` with fields overridden."""
    entry = get_space(name)
    variant = variant or entry.default_variant
    if variant not in entry.variants:
        raise SupernetError(f"unknown variant {variant!r} of space {name!r}; variants are {sorted(entry.variants)}")
    return replace(entry.variants[variant], **overrides) if overrides else entry.variants[variant]


def build_supernet(name: str, config: Any):
    return get_space(name).build_supernet(config)


def config_to_dict(config: Any) -> dict:
    """``config.to_dict()``, or the fields of a dataclass config (tuples as lists)."""
    if callable(getattr(config, "to_dict", None)):
        return config.to_dict()
    if dataclasses.is_dataclass(config):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    raise SupernetError(f"a space config must be a dataclass or define to_dict(), got {type(config).__name__}")


def config_from_dict(name: str, data: dict) -> Any:
    """The space config saved as ``data`` (``config_cls.from_dict``, or the dataclass's fields)."""
    cls = get_space(name).config_cls
    try:
        if callable(getattr(cls, "from_dict", None)):
            return cls.from_dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise SupernetError(f"space config for {name!r} is invalid: {exc}") from None
