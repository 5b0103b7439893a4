"""Search spaces register here by name, each with named variants (one called ``tiny``).

A space module calls :func:`register_space` at import time. The engine never imports a
concrete space: lookups import, once, every module named in the ``supernet.spaces``
entry-point group of the installed packages (this project's ``setup.cfg`` names
``search_spaces.mobilenet``; a third-party package adds its own the same way), plus the
modules listed in the ``SUPERNET_SPACES`` environment variable (comma-separated), for a
checkout used without installing. A script may also call :func:`register_space` itself.
What a space must provide is declared in :mod:`supernet.contract`.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, replace
from typing import Any, Callable

from .errors import SupernetError


@dataclass(frozen=True)
class SpaceEntry:
    name: str
    variants: dict[str, Any]
    config_cls: type
    build_space: Callable[[Any], Any]
    build_supernet: Callable[[Any], Any]
    build_static: Callable[[Any, Any], Any]
    default_variant: str
    task: str = "classification"


_SPACES: dict[str, SpaceEntry] = {}


def register_space(name: str, variants: dict[str, Any], *, config_cls: type, build_space: Callable,
                   build_supernet: Callable, build_static: Callable, default_variant: str,
                   task: str = "classification") -> None:
    """Register a space: ``build_space(config) -> SearchSpace``, ``build_supernet(config)``,
    ``build_static(config, arch) -> nn.Module`` (fresh weights, same keys as ``extract``),
    and the kind of its task (:mod:`supernet.task`)."""
    if "tiny" not in variants:
        raise ValueError(f"space {name!r} must bring a 'tiny' variant for the shared tests")
    if default_variant not in variants:
        raise ValueError(f"space {name!r}: default variant {default_variant!r} is not one of {sorted(variants)}")
    _SPACES[name] = SpaceEntry(name, dict(variants), config_cls, build_space, build_supernet, build_static,
                               default_variant, task)


_LOADED = False


def _space_modules() -> list[str]:
    from importlib.metadata import entry_points
    names = [ep.value for ep in entry_points(group="supernet.spaces")]
    names += [m.strip() for m in os.environ.get("SUPERNET_SPACES", "").split(",") if m.strip()]
    return list(dict.fromkeys(names))


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in _space_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SupernetError(f"cannot import search space module {module!r} ({exc}); is its package "
                                "installed? (pip install -e . installs this project's spaces)") from None


def space_names() -> list[str]:
    _load_all()
    return sorted(_SPACES)


def get_space(name: str) -> SpaceEntry:
    _load_all()
    if name not in _SPACES:
        raise SupernetError(f"unknown space {name!r}; registered spaces are {sorted(_SPACES)}")
    return _SPACES[name]


def space_config(name: str, variant: str | None = None, **overrides) -> Any:
    """The config of ``name``/``variant`` with fields overridden (e.g. ``num_classes``)."""
    entry = get_space(name)
    variant = variant or entry.default_variant
    if variant not in entry.variants:
        raise SupernetError(f"unknown variant {variant!r} of space {name!r}; variants are {sorted(entry.variants)}")
    return replace(entry.variants[variant], **overrides)


def build_supernet(name: str, config: Any):
    return get_space(name).build_supernet(config)


def config_from_dict(name: str, data: dict) -> Any:
    try:
        return get_space(name).config_cls.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise SupernetError(f"space config for {name!r} is invalid: {exc}") from None
