"""Arch values and the SearchSpace base class.

An :class:`Arch` is an immutable, hashable mapping of dimension name to an int or a
tuple of ints. It is data only: no tensors, no modules. A :class:`SearchSpace`
declares its dimensions and turns user input into canonical archs (inactive positions
normalised to 0 so that equal networks compare equal).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from .errors import SupernetError

Value = "int | tuple[int, ...]"


class Arch(Mapping):
    """Immutable mapping ``name -> int | tuple[int, ...]`` with value semantics."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, object]):
        items = []
        for name in sorted(values):
            value = values[name]
            if isinstance(value, (list, tuple)):
                value = tuple(int(v) for v in value)
            else:
                value = int(value)
            items.append((name, value))
        object.__setattr__(self, "_items", tuple(items))

    def __setattr__(self, name, value):
        raise AttributeError("Arch is immutable; use arch.replace(...)")

    def __getitem__(self, name: str):
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

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
        data = _parse_object(text)
        try:
            return cls(data)
        except (TypeError, ValueError):
            raise SupernetError("arch values must be integers or lists of integers") from None


@dataclass(frozen=True)
class Dimension:
    """One searchable dimension: ``length`` positions (None = a single int) with ``choices``."""

    name: str
    choices: tuple[int, ...]
    length: int | None = None

    @property
    def positions(self) -> int:
        return 1 if self.length is None else self.length


class SearchSpace:
    """Base class: a fixed list of dimensions plus a canonicalisation rule.

    Subclasses override :meth:`inactive` (which positions a given arch does not use)
    and may override :meth:`cardinality`. The integer encoding is the vector of choice
    indices of every position, dimensions in declaration order; inactive positions
    encode as 0. ``decode(encode(a)) == a`` for every canonical arch ``a``.
    """

    name = "space"

    def __init__(self, dimensions: Sequence[Dimension]):
        self.dimensions = tuple(dimensions)

    # -- structure -----------------------------------------------------------
    def inactive(self, values: Mapping[str, object]) -> dict[str, set[int]]:
        """Positions (per dimension) that the arch does not use. Default: none."""
        return {}

    def cardinality(self) -> int:
        """Number of distinct canonical archs."""
        return math.prod(len(d.choices) ** d.positions for d in self.dimensions)

    def __len__(self) -> int:
        return self.cardinality()

    @property
    def n_var(self) -> int:
        return sum(d.positions for d in self.dimensions)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive integer bounds of the encoding (for pymoo)."""
        upper = [len(d.choices) - 1 for d in self.dimensions for _ in range(d.positions)]
        return np.zeros(self.n_var, dtype=int), np.array(upper, dtype=int)

    # -- construction --------------------------------------------------------
    def make(self, values: Mapping[str, object]) -> Arch:
        """Validate user values and return the canonical arch."""
        self._check_fields(values)
        return self._canonical(values)

    def validate(self, arch: Mapping[str, object]) -> Arch:
        """Raise :class:`SupernetError` naming the bad field and allowed values."""
        return self.make(arch)

    def _check_fields(self, values: Mapping[str, object]) -> None:
        names = [d.name for d in self.dimensions]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise SupernetError(f"unknown arch field {unknown[0]!r} for space {self.name!r}; fields are {names}")
        missing = [n for n in names if n not in values]
        if missing:
            raise SupernetError(f"arch is missing field {missing[0]!r} for space {self.name!r}")
        for dim in self.dimensions:
            self._check_shape(dim, values[dim.name])
        inactive = self.inactive(values)
        for dim in self.dimensions:
            seq = _as_seq(dim, values[dim.name])
            skip = inactive.get(dim.name, set())
            for i, v in enumerate(seq):
                if i not in skip and v not in dim.choices:
                    where = dim.name if dim.length is None else f"{dim.name}[{i}]"
                    raise SupernetError(f"arch field {where} = {v} is not allowed; allowed values are {list(dim.choices)}")

    @staticmethod
    def _check_shape(dim: Dimension, value) -> None:
        if dim.length is None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SupernetError(f"arch field {dim.name} must be one integer from {list(dim.choices)}")
            return
        if not isinstance(value, (list, tuple)) or len(value) != dim.length:
            raise SupernetError(f"arch field {dim.name} must be a list of {dim.length} integers from {list(dim.choices)}")
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
            raise SupernetError(f"arch field {dim.name} must hold integers from {list(dim.choices)}")

    def _canonical(self, values: Mapping[str, object]) -> Arch:
        inactive = self.inactive(values)
        out = {}
        for dim in self.dimensions:
            if dim.length is None:
                out[dim.name] = int(values[dim.name])
            else:
                skip = inactive.get(dim.name, set())
                out[dim.name] = tuple(0 if i in skip else int(v) for i, v in enumerate(values[dim.name]))
        return Arch(out)

    # -- canonical points ----------------------------------------------------
    def _uniform(self, pick) -> Arch:
        values = {}
        for d in self.dimensions:
            values[d.name] = pick(d.choices) if d.length is None else [pick(d.choices)] * d.length
        return self._canonical(values)

    def smallest(self) -> Arch:
        return self._uniform(min)

    def largest(self) -> Arch:
        return self._uniform(max)

    def median(self) -> Arch:
        """Middle choice of every dimension (lower middle for an even count)."""
        return self._uniform(lambda c: sorted(c)[(len(c) - 1) // 2])

    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform choice at every position, then canonicalised."""
        values = {}
        for d in self.dimensions:
            idx = rng.integers(0, len(d.choices), size=d.positions)
            picked = [d.choices[i] for i in idx]
            values[d.name] = picked[0] if d.length is None else picked
        return self._canonical(values)

    # -- encoding ------------------------------------------------------------
    def encode(self, arch: Mapping[str, object]) -> np.ndarray:
        arch = self.make(arch)
        x = []
        for d in self.dimensions:
            seq = _as_seq(d, arch[d.name])
            x.extend(d.choices.index(v) if v in d.choices else 0 for v in seq)
        return np.asarray(x, dtype=np.int64)

    def decode(self, x: Sequence[int]) -> Arch:
        x = np.asarray(x).round().astype(np.int64)
        if x.shape != (self.n_var,):
            raise SupernetError(f"encoding must have {self.n_var} integers, got shape {tuple(x.shape)}")
        values, at = {}, 0
        for d in self.dimensions:
            idx = np.clip(x[at:at + d.positions], 0, len(d.choices) - 1)
            picked = [d.choices[i] for i in idx]
            values[d.name] = picked[0] if d.length is None else picked
            at += d.positions
        return self._canonical(values)

    def load_arch(self, text_or_path: str) -> Arch:
        """Arch from a JSON string, a JSON file, or one of ``largest|smallest|median``."""
        named = {"largest": self.largest, "smallest": self.smallest, "median": self.median}
        if text_or_path in named:
            return named[text_or_path]()
        text = text_or_path
        if not text.lstrip().startswith("{"):
            try:
                with open(text_or_path) as fh:
                    text = fh.read()
            except OSError as exc:
                raise SupernetError(f"cannot read arch file {text_or_path!r}: {exc.strerror}") from None
        data = _parse_object(text)
        if isinstance(data.get("arch"), dict):  # an arch.json written by export
            data = data["arch"]
        return self.make(data)


def _as_seq(dim: Dimension, value) -> tuple:
    return (value,) if dim.length is None else tuple(value)


def _parse_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SupernetError(f"arch is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise SupernetError("arch JSON must be an object mapping dimension name to value")
    return data
