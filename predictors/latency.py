"""Latency predictor: the lookup-table sum corrected by a learned linear model.

Per-unit sums miss fusion, cache and framework-overhead effects, so the prediction is

    latency(a) = w0 + w1 * T(a) + w2 * n_blocks(a) + w3 * r(a)

with ``T(a)`` the table sum of the arch's units, fitted by ridge regression (alpha chosen
by leave-one-out) on measured latencies of whole extracted subnets.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace
from supernet.hardware.table import unit_sum

from .base import Predictor


class TableLatencyPredictor(Predictor):
    """``fit(archs, measured_ms)``; ``predict`` -> (ms, 0). ``table_only`` gives the raw sums."""

    kind = "latency_table"

    def __init__(self, space: SearchSpace, seed: int = 0, units: dict | None = None,
                 alphas: tuple = (1e-3, 1e-2, 0.1, 1.0, 10.0)):
        if not units:
            raise SupernetError("a latency predictor needs the unit latencies of a table (units={key: ms})")
        super().__init__(space, seed, units=units, alphas=list(alphas))
        self._model = None

    def table_only(self, archs) -> np.ndarray:
        """Sum of unit latencies (ms) of each arch."""
        return np.array([unit_sum(self.options["units"], self.space, self.space.make(a)) for a in archs])

    def _features(self, archs: list[Arch]) -> np.ndarray:
        n_units = [len(self.space.latency_units(a)) for a in archs]
        res = [a["r"] if "r" in a else 0 for a in archs]
        return np.column_stack([self.table_only(archs), n_units, res])

    def _fit(self, archs: list[Arch], z: np.ndarray) -> None:
        self._model = make_pipeline(StandardScaler(), RidgeCV(alphas=self.options["alphas"]))
        self._model.fit(self._features(archs), z)

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        mean = self._model.predict(self._features(archs))
        return mean, np.zeros_like(mean)
