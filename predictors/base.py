"""The predictor interface: ``fit(archs, y)``, ``predict(archs) -> (mean, std)``, save/load.

A predictor is built from a :class:`SearchSpace`, a seed and JSON-able options. Saving
writes JSON (kind, seed, options, the space's dimensions and the training data); loading
checks the space and refits, which is deterministic, so a loaded predictor predicts
exactly what the saved one did. Nothing is unpickled and no code runs on load.
"""
from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

import numpy as np

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace, space_signature
from supernet.io.files import atomic_write_json, read_json

FORMAT = "supernet-predictor/1"
MIN_ARCHS = 5
STATE_KEYS = {"format", "kind", "seed", "options", "space", "archs", "y"}


def check_state(data) -> None:
    """Raise :class:`SupernetError` unless ``data`` looks like :meth:`Predictor.state` output."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SupernetError(f"not a predictor file (expected format {FORMAT!r}); save one with predictor.save")
    missing = sorted(STATE_KEYS - set(data))
    if missing:
        raise SupernetError(f"predictor file lacks field {missing[0]!r}; save it again with predictor.save")


class Predictor:
    """Base class. Subclasses set ``kind`` and implement ``_fit`` / ``_predict``.

    ``fit`` validates the data, canonicalises the archs and standardises the targets
    (``z = (y - mean) / scale``); subclasses fit ``z`` and predict ``(mean_z, std_z)``,
    which ``predict`` maps back to target units. Single models report ``std = 0``.
    """

    kind = "base"

    def __init__(self, space: SearchSpace, seed: int = 0, **options):
        self.space, self.seed = space, int(seed)
        self.options = json.loads(json.dumps(options))  # exactly what a save/load round trip gives
        self._train: tuple[list[Arch], np.ndarray] | None = None
        self._shift, self._scale = 0.0, 1.0

    # -- subclass hooks ------------------------------------------------------
    def _fit(self, archs: list[Arch], z: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # -- public API ----------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._train is not None

    def fit(self, archs: Sequence[Mapping[str, object]], y: Sequence[float]) -> "Predictor":
        """Fit on ``len(archs) >= MIN_ARCHS`` archs and their finite targets; returns ``self``."""
        archs, y = self._check_data(archs, y)
        self._shift = float(y.mean())
        self._scale = float(y.std()) or 1.0
        self._fit(archs, (y - self._shift) / self._scale)
        self._train = (archs, y)
        return self

    def predict(self, archs: Sequence[Mapping[str, object]]) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``, two float arrays of shape ``(len(archs),)``; ``std >= 0``."""
        if not self.fitted:
            raise SupernetError(f"{self.kind} predictor is not fitted; call fit(archs, y) before predict")
        if len(archs) == 0:
            return np.zeros(0), np.zeros(0)
        archs = self.space.make_many(archs)
        mean, std = self._predict(archs)
        return mean * self._scale + self._shift, np.abs(std) * self._scale

    def state(self) -> dict:
        """JSON-able description from which :meth:`from_state` rebuilds this predictor."""
        if not self.fitted:
            raise SupernetError(f"{self.kind} predictor is not fitted; fit it before saving")
        archs, y = self._train
        return {"format": FORMAT, "kind": self.kind, "seed": self.seed, "options": self.options,
                "space": space_signature(self.space), "archs": [a.to_dict() for a in archs],
                "y": [float(v) for v in y]}

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state` as JSON, atomically."""
        atomic_write_json(path, self.state())

    @classmethod
    def from_state(cls, data: dict, space: SearchSpace) -> "Predictor":
        """Rebuild and refit (deterministically) from :meth:`state`, checking kind and space."""
        check_state(data)
        if data["kind"] != cls.kind:
            raise SupernetError(f"predictor file holds a {data['kind']!r} predictor, not {cls.kind!r}; "
                                "use predictors.load_predictor to load any kind")
        if data["space"] != space_signature(space):
            raise SupernetError(f"predictor was fitted on another search space ({data['space']['name']!r} with "
                                "different dimensions); load it with the space it was saved with")
        return cls(space, seed=data["seed"], **data["options"]).fit(data["archs"], data["y"])

    @classmethod
    def load(cls, path: str | os.PathLike, space: SearchSpace) -> "Predictor":
        return cls.from_state(read_json(path, "predictor file"), space)

    # -- helpers -------------------------------------------------------------
    def _check_data(self, archs, y) -> tuple[list[Arch], np.ndarray]:
        y = np.asarray(y, dtype=float)
        if y.ndim != 1:
            raise SupernetError(f"targets must be a 1-D sequence of numbers, got shape {y.shape}")
        if len(archs) != len(y):
            raise SupernetError(f"got {len(archs)} archs but {len(y)} targets; pass one target per arch")
        if len(archs) < MIN_ARCHS:
            raise SupernetError(f"{self.kind} predictor needs at least {MIN_ARCHS} archs to fit, got {len(archs)}")
        if not np.all(np.isfinite(y)):
            raise SupernetError("targets contain NaN or infinity; drop those archs before fitting")
        return self.space.make_many(archs), y
