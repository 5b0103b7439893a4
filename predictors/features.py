"""Feature maps: archs of one search space -> float matrices for the regressors.

Every map starts from the space's encoding ``space.encode_many(archs) -> (codes, active)``
(one choice index per position, and a mask of the positions the arch uses), so a position
that is inactive never looks like its first choice. Per position:

- ``onehot``: one column per choice; an inactive position is all zeros.
- ``ordinal``: an ordered dimension gives the chosen *value* (e.g. kernel 3/5/7; the rank
  1..k for string choices); a categorical one gives one-hot columns. Inactive = 0.
- ``index``: an ordered dimension gives the choice index + 1; a categorical one gives
  one-hot columns. Inactive = 0.

Unordered choices are never given a made-up order: categorical dimensions are one-hot in
every map. Building is vectorised (one array operation per block of columns), not per arch.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace

FEATURE_KINDS = ("onehot", "ordinal", "index")


def _check_kind(kind: str) -> None:
    if kind not in FEATURE_KINDS:
        raise SupernetError(f"unknown feature map {kind!r}; choose one of {list(FEATURE_KINDS)}")


class FeatureMap:
    """``FeatureMap(space, kind)(archs) -> float64 array (n_archs, width)``.

    Archs are validated and canonicalised by ``space.make`` first, so a bad arch raises
    the space's :class:`SupernetError`.
    """

    def __init__(self, space: SearchSpace, kind: str):
        _check_kind(kind)
        self.space, self.kind = space, kind
        self._choices = [d.choices for d in space.dimensions for _ in range(d.positions)]
        onehot = [kind == "onehot" or d.kind == "categorical" for d in space.dimensions for _ in range(d.positions)]
        self._onehot = np.array(onehot, dtype=bool)  # per position: one-hot block, else one scalar column
        sizes = [len(c) if h else 1 for c, h in zip(self._choices, onehot)]
        self._offsets = np.cumsum([0] + sizes)
        self._scalar = self._scalar_table(space) if kind != "onehot" else None

    def _scalar_table(self, space: SearchSpace) -> np.ndarray:
        """(n_var, max_choices) value of each choice index for the scalar (ordered) columns."""
        table = np.zeros((len(self._choices), max(len(c) for c in self._choices)))
        at = 0
        for d in space.dimensions:
            ranks = np.arange(1, len(d.choices) + 1, dtype=float)
            values = ranks if self.kind == "index" or not d.numeric else np.array(d.choices, dtype=float)
            if self.kind == "ordinal" and not d.numeric:
                order = {c: i for i, c in enumerate(d.ordered_choices())}
                values = np.array([order[c] + 1 for c in d.choices], dtype=float)
            table[at:at + d.positions, :len(d.choices)] = values
            at += d.positions
        return table

    @property
    def width(self) -> int:
        return int(self._offsets[-1])

    def __call__(self, archs: Sequence[Mapping[str, object]]) -> np.ndarray:
        codes, active = self.space.encode_many(archs)
        return self.from_codes(codes, active)

    def from_codes(self, codes: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Features of encoded archs: ``codes`` choice indices and ``active`` mask, both ``(n, n_var)``."""
        n = len(codes)
        out = np.zeros((n, self.width))
        hot = np.flatnonzero(self._onehot)
        if len(hot):
            cols = self._offsets[hot][None, :] + codes[:, hot]  # (n, n_hot) column of each chosen one-hot
            rows = np.broadcast_to(np.arange(n)[:, None], cols.shape)
            on = active[:, hot]
            out[rows[on], cols[on]] = 1.0
        flat = np.flatnonzero(~self._onehot)
        if len(flat):
            values = self._scalar[flat[None, :], codes[:, flat]]  # (n, n_flat)
            out[:, self._offsets[flat]] = np.where(active[:, flat], values, 0.0)
        return out

    def code_and_mask(self, arch: Mapping[str, object]) -> tuple[np.ndarray, np.ndarray]:
        """(choice indices, boolean active mask), both of length ``space.n_var``."""
        codes, active = self.space.encode_many([arch])
        return codes[0], active[0]
