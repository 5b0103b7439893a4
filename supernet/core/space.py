"""The SearchSpace base class: dimensions, canonical archs and their integer encoding.

A :class:`SearchSpace` declares its dimensions and turns user input into canonical archs
(inactive positions normalised, to 0 for integer dimensions and ``None`` otherwise, so
that equal networks compare equal).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .arch import PLAIN_TYPES, Arch, Dimension, parse_object, plain_scalar
from .errors import SupernetError


def space_signature(space: "SearchSpace") -> dict:
    """What must match between two spaces for saved data (predictors, searches) to carry over.

    A dimension's ``kind`` appears only when it is not the default ``ordered``, so signatures
    saved before kinds existed still match.
    """
    dims = []
    for d in space.dimensions:
        entry = {"name": d.name, "choices": list(d.choices), "length": d.length}
        if d.kind != "ordered":
            entry["kind"] = d.kind
        dims.append(entry)
    return {"name": space.name, "dimensions": dims}


class SearchSpace:
    """Base class: a fixed list of dimensions plus a canonicalisation rule.

    Which positions an arch does not use is declared with ``active_by`` (see
    :func:`supernet.core.depths.check_active_by`): ``{"width": "depth"}`` makes positions
    ``>= depth`` of ``width`` inactive; ``{"ks": "d"}`` with ``d`` a list of ``S`` stage depths
    splits ``ks`` into ``S`` equal segments and keeps the first ``d[s]`` of segment ``s``. Spaces
    with another rule override :meth:`inactive` instead. Subclasses may override :meth:`cardinality` and :meth:`canonical` (a representative of archs
    that are the same network, e.g. isomorphic cells; the search evaluates one per class).
    The integer encoding is the vector of choice indices of every position, dimensions in
    declaration order; inactive positions encode as 0. ``decode(encode(a)) == a`` for every
    canonical arch ``a``.
    """

    name = "space"
    MEMO = 200_000  # validated archs remembered by ``make`` (a pure function of the space)

    def __init__(self, dimensions: Sequence[Dimension], active_by: Mapping[str, str] | None = None):
        self.dimensions = tuple(dimensions)
        names = [d.name for d in self.dimensions]
        if len(set(names)) != len(names):
            dup = next(n for i, n in enumerate(names) if n in names[:i])
            raise SupernetError(f"the space declares dimension {dup!r} twice; give each dimension one name")
        from .depths import check_active_by
        self.active_by = check_active_by(self.dimensions, active_by or {})

    # -- structure -----------------------------------------------------------
    def inactive(self, values: Mapping[str, object]) -> dict[str, set[int]]:
        """Positions (per dimension) that the arch does not use. Default: those ``active_by`` declares."""
        if not self.__dict__.get("active_by"):
            return {}
        from .depths import inactive_positions
        return inactive_positions(self.dimensions, self.active_by, values)

    def canonical(self, arch: Arch) -> Arch:
        """The representative of ``arch``'s equivalence class (default: ``arch`` itself).

        Override to merge archs that are the same network (e.g. isomorphic cells): it must
        return a valid arch of this space, the same one for every member of a class
        (``canonical(canonical(a)) == canonical(a)``). The search caches and proposes only
        representatives, so equivalent archs are evaluated once.
        """
        return arch

    def cardinality(self) -> int:
        """Number of distinct canonical archs (before any :meth:`canonical` merging)."""
        if self.__dict__.get("active_by"):
            from .depths import gated_cardinality
            return gated_cardinality(self.dimensions, self.active_by)
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

    def signature(self) -> dict:
        """See :func:`space_signature`."""
        return space_signature(self)

    # -- construction --------------------------------------------------------
    def make(self, values: Mapping[str, object]) -> Arch:
        """Validate user values and return the canonical arch (memoised for :class:`Arch` inputs)."""
        memo = self.__dict__.setdefault("_made", {})
        if isinstance(values, Arch) and values in memo:
            return memo[values]
        self._check_fields(values)
        arch = self._canonical(values)
        if isinstance(values, Arch) and len(memo) < self.MEMO:
            memo[values] = arch
        return arch

    def make_many(self, archs: Sequence[Mapping[str, object]]) -> list[Arch]:
        return [self.make(a) for a in archs]

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
            index = dim._index
            for i, v in enumerate(seq):
                if i not in skip and index.get(v) is None:
                    where = dim.name if dim.length is None else f"{dim.name}[{i}]"
                    raise SupernetError(f"arch field {where} = {v!r} is not allowed; allowed values are "
                                        f"{list(dim.choices)}")

    @staticmethod
    def _check_shape(dim: Dimension, value) -> None:
        what = dim.describe()
        if dim.length is None:
            if not plain_scalar(value):
                raise SupernetError(f"arch field {dim.name} must be one of {list(dim.choices)}")
            return
        if not isinstance(value, (list, tuple)) or len(value) != dim.length:
            raise SupernetError(f"arch field {dim.name} must be a list of {dim.length} {what} from {list(dim.choices)}")
        if not all(type(v) in PLAIN_TYPES or v is None or plain_scalar(v) for v in value):
            raise SupernetError(f"arch field {dim.name} must hold {what} from {list(dim.choices)}")

    def _canonical(self, values: Mapping[str, object]) -> Arch:
        inactive = self.inactive(values)
        out = {}
        for dim in self.dimensions:
            if dim.length is None:
                out[dim.name] = dim.choices[dim.index(values[dim.name])]
            else:
                skip = inactive.get(dim.name, ())
                index, choices, off = dim._index, dim.choices, dim.inactive_value
                out[dim.name] = tuple(off if i in skip else choices[index[v]] for i, v in enumerate(values[dim.name]))
        return self._remember(Arch(out))

    def remember(self, arch: Arch) -> Arch:
        """Record ``arch``, which must be canonical and valid (built from this space's own choices and rules, as
        the search's decoder builds a population), so that ``make`` accepts it without checking it again."""
        return self._remember(arch)

    def _remember(self, arch: Arch) -> Arch:
        """Record a canonical arch, so that ``make`` (and every predictor) accepts it without re-validating."""
        memo = self.__dict__.setdefault("_made", {})
        if len(memo) >= self.MEMO:
            memo.clear()
        return memo.setdefault(arch, arch)

    # -- canonical points ----------------------------------------------------
    def _uniform(self, pick) -> Arch:
        values = {}
        for d in self.dimensions:
            choice = pick(d.ordered_choices())
            values[d.name] = choice if d.length is None else [choice] * d.length
        return self._canonical(values)

    def smallest(self) -> Arch:
        """Smallest value of every ordered numeric dimension; the first declared choice otherwise."""
        return self._uniform(lambda c: c[0])

    def largest(self) -> Arch:
        """Largest value of every ordered numeric dimension; the last declared choice otherwise."""
        return self._uniform(lambda c: c[-1])

    def median(self) -> Arch:
        """Middle choice of every dimension (lower middle for an even count)."""
        return self._uniform(lambda c: c[(len(c) - 1) // 2])

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
        """Choice index per position (``n_var`` ints); inactive positions encode as 0."""
        return self.encode_many([arch])[0][0]

    def encode_many(self, archs: Sequence[Mapping[str, object]]) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, active)``: int64 choice indices and a boolean active mask, both ``(len(archs), n_var)``.

        Vectorised: each arch is validated (memoised) and flattened once; the lookup of
        values among the choices is one array comparison per dimension.
        """
        archs = self.make_many(archs)
        codes = np.zeros((len(archs), self.n_var), dtype=np.int64)
        active = np.ones((len(archs), self.n_var), dtype=bool)
        at = 0
        for d in self.dimensions:
            span = slice(at, at + d.positions)
            values = [_as_seq(d, a[d.name]) for a in archs]
            codes[:, span], found = _lookup(values, d)
            active[:, span] = found if not self._ambiguous(d) else self._active_mask(archs, d)
            at += d.positions
        return codes, active

    def _ambiguous(self, dim: Dimension) -> bool:
        """True when an inactive position's placeholder is also a choice (then ``inactive`` decides)."""
        return dim.inactive_value in dim.choices and (type(self).inactive is not SearchSpace.inactive
                                                       or bool(self.__dict__.get("active_by")))

    def _active_mask(self, archs: Sequence[Arch], dim: Dimension) -> np.ndarray:
        mask = np.ones((len(archs), dim.positions), dtype=bool)
        for row, arch in enumerate(archs):
            for i in self.inactive(arch).get(dim.name, ()):
                mask[row, i] = False
        return mask

    def inactive_codes(self, codes: np.ndarray) -> np.ndarray | None:
        """Boolean ``(n, n_var)`` mask of the positions encoded rows ``codes`` do not use, in one array pass, when
        the space's rule is its declared ``active_by`` (None when ``inactive`` or ``canonical`` is overridden:
        then only a per-arch decode knows). Zeroing those positions gives the canonical encoding."""
        if (type(self).inactive is not SearchSpace.inactive or type(self).canonical is not SearchSpace.canonical):
            return None
        codes = np.asarray(codes)
        mask = np.zeros(codes.shape, dtype=bool)
        if not self.__dict__.get("active_by"):
            return mask
        starts, at = {}, 0
        for d in self.dimensions:
            starts[d.name], at = (at, d), at + d.positions
        for gated, depth in self.active_by.items():
            (g0, g), (d0, d) = starts[gated], starts[depth]
            values = np.array(d.choices)[np.clip(codes[:, d0:d0 + d.positions], 0, len(d.choices) - 1)]  # (n, S)
            seg = g.length // d.positions
            slot = np.tile(np.arange(seg), d.positions)  # position within its segment
            mask[:, g0:g0 + g.length] = slot[None, :] >= np.repeat(values, seg, axis=1)
        return mask

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
        data = parse_object(text)
        if isinstance(data.get("arch"), dict):  # an arch.json written by export
            data = data["arch"]
        return self.make(data)


def _lookup(values: list[tuple], dim: Dimension) -> tuple[np.ndarray, np.ndarray]:
    """Choice index of every value (``(n, positions)``) and whether it is a choice (else index 0)."""
    n = len(values)
    if dim.numeric:
        V = np.array(values, dtype=float).reshape(n, dim.positions)  # None (inactive) -> nan
        C = np.array(dim.choices, dtype=float)
    else:
        V = np.empty((n, dim.positions), dtype=object)
        for row, value in enumerate(values):
            V[row] = value
        C = np.empty(len(dim.choices), dtype=object)
        C[:] = dim.choices
    eq = V[:, :, None] == C[None, None, :]  # (n, positions, choices)
    return eq.argmax(axis=2), eq.any(axis=2)


def _as_seq(dim: Dimension, value) -> tuple:
    return (value,) if dim.length is None else tuple(value)
