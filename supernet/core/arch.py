"""Arch values and the dimensions they are drawn from.

An :class:`Arch` is an immutable, hashable mapping of dimension name to a JSON scalar
(int, float or string) or a tuple of them. It is data only: no tensors, no modules. A
:class:`Dimension` declares one searchable choice; a :class:`supernet.core.space.SearchSpace`
holds the dimensions and turns user input into canonical archs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from .errors import SupernetError

Value = "int | float | str | tuple[int | float | str | None, ...]"


KINDS = ("ordered", "categorical")


PLAIN_TYPES = frozenset({int, float, str})


def _scalar(value):
    """A JSON scalar as a plain Python value (numpy numbers unwrapped); TypeError for anything else."""
    if value is None or type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("booleans are not arch values")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a JSON scalar")


class Arch(Mapping):
    """Immutable mapping ``name -> scalar | tuple[scalar, ...]`` with value semantics (scalar: int, float, str)."""

    __slots__ = ("_items", "_map", "_hash")

    def __init__(self, values: Mapping[str, object]):
        items = []
        for name in sorted(values):
            value = values[name]
            if isinstance(value, (list, tuple, np.ndarray)):
                value = tuple(_scalar(v) for v in value)
            else:
                value = _scalar(value)
            items.append((name, value))
        object.__setattr__(self, "_items", tuple(items))
        object.__setattr__(self, "_map", dict(items))

    @classmethod
    def from_items(cls, items: tuple) -> "Arch":
        """An arch from ``(name, value)`` pairs already sorted by name, each value a plain scalar or a tuple of
        them (what a space builds from its own choices; nothing is converted or checked)."""
        arch = object.__new__(cls)
        object.__setattr__(arch, "_items", items)
        object.__setattr__(arch, "_map", dict(items))
        return arch

    def __setattr__(self, name, value):
        raise AttributeError("Arch is immutable; use arch.replace(...)")

    def __getitem__(self, name: str):
        return self._map[name]

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:  # computed once: searches hash the same archs over and over
            object.__setattr__(self, "_hash", hash(self._items))
            return self._hash

    def __eq__(self, other) -> bool:
        return isinstance(other, Arch) and self._items == other._items

    def __repr__(self) -> str:
        return f"Arch({self.to_json()})"

    def __reduce__(self):
        """Pickles as ``Arch(dict)``, so archs cross process boundaries (pool workers, Ray)."""
        return (Arch, (dict(self._items),))

    def replace(self, **changes) -> "Arch":
        """A new arch with some dimensions changed (not canonicalised)."""
        return Arch({**dict(self._items), **changes})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._items}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Arch":
        data = parse_object(text)
        try:
            return cls(data)
        except (TypeError, ValueError):
            raise SupernetError("arch values must be numbers, strings or lists of them") from None


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension: ``length`` positions (None = a single value) with ``choices``.

    ``choices`` are distinct JSON scalars (ints, floats or strings). ``kind`` is ``"ordered"``
    (default: the choices form a scale, e.g. widths; features use their values, or their rank
    for strings) or ``"categorical"`` (unordered, e.g. operations; features are one-hot).
    """

    name: str
    choices: tuple
    length: int | None = None
    kind: str = "ordered"

    def __post_init__(self):
        try:
            choices = tuple(_scalar(c) for c in self.choices)
        except TypeError as exc:
            raise SupernetError(f"dimension {self.name!r}: choices must be numbers or strings ({exc})") from None
        if not choices or any(c is None for c in choices):
            raise SupernetError(f"dimension {self.name!r} needs at least one choice and no None among them")
        if len(set(choices)) != len(choices):
            dup = next(c for i, c in enumerate(choices) if c in choices[:i])
            raise SupernetError(f"dimension {self.name!r} repeats the choice {dup!r}; list each choice once")
        if self.kind not in KINDS:
            raise SupernetError(f"dimension {self.name!r}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.length is not None and (isinstance(self.length, bool) or int(self.length) < 1):
            raise SupernetError(f"dimension {self.name!r}: length must be a positive integer or None")
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(choices)})  # 3.0 finds 3; "3" does not

    def index(self, value) -> int | None:
        """Index of the choice equal to ``value`` (None if it is not a choice)."""
        try:
            return self._index.get(value) if plain_scalar(value) else None
        except TypeError:
            return None

    @property
    def positions(self) -> int:
        return 1 if self.length is None else self.length

    @property
    def integer(self) -> bool:
        """All choices are integers (the original, integer-only kind of dimension)."""
        return all(isinstance(c, int) for c in self.choices)

    @property
    def numeric(self) -> bool:
        return all(isinstance(c, (int, float)) for c in self.choices)

    @property
    def inactive_value(self):
        """What an inactive position holds in a canonical arch: 0 for integer dimensions, else None."""
        return 0 if self.integer else None

    def ordered_choices(self) -> tuple:
        """Choices from 'smallest' to 'largest': by value for numeric ordered dimensions, else as declared."""
        return tuple(sorted(self.choices)) if self.kind == "ordered" and self.numeric else self.choices

    def describe(self) -> str:
        """``"integers"`` or ``"values"``: how error messages call the choices."""
        return "integers" if self.integer else "values"


def plain_scalar(value) -> bool:
    return isinstance(value, (int, float, str, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def parse_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SupernetError(f"arch is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise SupernetError("arch JSON must be an object mapping dimension name to value")
    return data
