"""Search spaces register here by name, each with named variants (one called ``tiny``).

A space module calls :func:`register_space` at import time; ``search_spaces``
imports every space module, and lookups import it on first use.
"""
from __future__ import annotations

import importlib
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


_SPACES: dict[str, SpaceEntry] = {}


def register_space(name: str, variants: dict[str, Any], *, config_cls: type, build_space: Callable,
                   build_supernet: Callable, build_static: Callable, default_variant: str) -> None:
    """Register a space: ``build_space(config) -> SearchSpace``, ``build_supernet(config)``,
    ``build_static(config, arch) -> nn.Module`` (fresh weights, same keys as ``extract``)."""
    if "tiny" not in variants:
        raise ValueError(f"space {name!r} must bring a 'tiny' variant for the shared tests")
    _SPACES[name] = SpaceEntry(name, dict(variants), config_cls, build_space, build_supernet, build_static, default_variant)


def _load_all() -> None:
    importlib.import_module("search_spaces")


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
