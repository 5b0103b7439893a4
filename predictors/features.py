"""Feature maps: archs of one search space -> float matrices for the regressors.

Every map starts from the space's integer encoding ``space.encode(arch)`` (one choice
index per position) and its ``space.inactive(arch)`` mask (positions the arch does not
use), so a position that is inactive never looks like its first choice.

- ``onehot``: per position one column per choice; an inactive position is all zeros.
- ``ordinal``: per position the chosen *value* (e.g. kernel 3/5/7); inactive = 0.
- ``index``: per position the choice index + 1; inactive = 0.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from supernet.arch import SearchSpace
from supernet.errors import SupernetError

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
        self._offsets = np.cumsum([0] + [len(c) for c in self._choices])

    @property
    def width(self) -> int:
        return int(self._offsets[-1]) if self.kind == "onehot" else len(self._choices)

    def __call__(self, archs: Sequence[Mapping[str, object]]) -> np.ndarray:
        out = np.zeros((len(archs), self.width))
        for row, arch in enumerate(archs):
            code, active = self.code_and_mask(arch)
            out[row] = self._row(code, active)
        return out

    def code_and_mask(self, arch: Mapping[str, object]) -> tuple[np.ndarray, np.ndarray]:
        """(choice indices, boolean active mask), both of length ``space.n_var``."""
        arch = self.space.make(arch)
        code = self.space.encode(arch)
        inactive = self.space.inactive(arch)
        active = []
        for d in self.space.dimensions:
            skip = inactive.get(d.name, set())
            active.extend(i not in skip for i in range(d.positions))
        return code, np.asarray(active, dtype=bool)

    def _row(self, code: np.ndarray, active: np.ndarray) -> np.ndarray:
        if self.kind == "index":
            return np.where(active, code + 1, 0).astype(float)
        if self.kind == "ordinal":
            values = [c[i] for c, i in zip(self._choices, code)]
            return np.where(active, values, 0).astype(float)
        row = np.zeros(self.width)
        cols = self._offsets[:-1] + code
        row[cols[active]] = 1.0
        return row
