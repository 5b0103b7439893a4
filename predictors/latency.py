"""Latency predictor: the lookup-table sum corrected by a learned linear model.

Per-unit sums miss fusion, cache and framework-overhead effects, so the prediction is

    latency(a) = w0 + w1 * T(a) + w2 * n_units(a) + w3 * r(a) + w4 * K(a)

with ``T(a)`` the table sum of the arch's units and ``K(a)`` the kernels its units launch (the
table's per-unit counts, :mod:`supernet.hardware.kernels`): on a launch-bound GPU (eager PyTorch
at batch 1) a net's time follows its kernel count, which a unit timed alone does not carry over
(the gaps between kernels differ in a whole net). ``w0`` is the per-arch constant (the call's
own overhead, once per net, where the table pays it once per unit). Fitted by ridge regression
on standardised features (alpha chosen by leave-one-out) on measured latencies of whole
extracted subnets. Without ``kernels`` the ``K`` term is left out.

The linear model extrapolates: fitted on a few measured subnets it can predict an arch far from them at
a latency below zero. So a prediction is kept within half the smallest and twice the largest ratio of
measured to table latency seen in the fit, ``min_i m_i / T(a_i) / 2 <= latency(a) / T(a) <= 2 max_i m_i /
T(a_i)``: a guard against gross extrapolation that leaves a fixed overhead's varying ratio alone.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace
from supernet.hardware.latency_table import count_unit_kernels, unit_sum

from .base import Predictor


class TableLatencyPredictor(Predictor):
    """``fit(archs, measured_ms)``; ``predict`` -> (ms, 0). ``table_only`` gives the raw sums."""

    kind = "latency_table"

    def __init__(self, space: SearchSpace, seed: int = 0, units: dict | None = None, kernels: dict | None = None,
                 alphas: tuple = (1e-3, 1e-2, 0.1, 1.0, 10.0)):
        if not units:
            raise SupernetError("a latency predictor needs the unit latencies of a table (units={key: ms})")
        super().__init__(space, seed, units=units, kernels=dict(kernels or {}), alphas=list(alphas))
        self._model = None

    def table_only(self, archs) -> np.ndarray:
        """Sum of unit latencies (ms) of each arch."""
        return np.array([unit_sum(self.options["units"], self.space, self.space.make(a)) for a in archs])

    def kernel_counts(self, archs) -> np.ndarray:
        """``K(a)``: kernels launched by the arch's units (the table's per-unit counts summed)."""
        counts = self.options["kernels"]
        try:
            return np.array([sum(counts[key] for key, _, _ in self.space.latency_units(self.space.make(a)))
                             for a in archs], dtype=float)
        except KeyError as exc:
            raise SupernetError(f"the table's kernel counts lack unit {exc.args[0]!r}; rebuild it with "
                                "`supernet latency build`") from None

    def _features(self, archs: list[Arch]) -> np.ndarray:
        n_units = [len(self.space.latency_units(a)) for a in archs]
        res = [a["r"] if "r" in a else 0 for a in archs]
        columns = [self.table_only(archs), n_units, res]
        if self.options["kernels"]:
            columns.append(self.kernel_counts(archs))
        return np.column_stack(columns)

    def _fit(self, archs: list[Arch], z: np.ndarray) -> None:
        self._model = make_pipeline(StandardScaler(), RidgeCV(alphas=self.options["alphas"]))
        self._model.fit(self._features(archs), z)

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        mean = self._model.predict(self._features(archs))
        return mean, np.zeros_like(mean)

    def fit(self, archs, y) -> "TableLatencyPredictor":
        super().fit(archs, y)
        fitted, measured = self._train
        ratios = measured / self.table_only(fitted)
        self._ratios = (float(ratios.min()) / 2, 2 * float(ratios.max()))
        return self

    def predict(self, archs) -> tuple[np.ndarray, np.ndarray]:
        """``(ms, 0)``: the corrected sum, held near the measured-to-table ratios of the fit (module doc)."""
        mean, std = super().predict(archs)
        table = self.table_only(self.space.make_many(archs))
        return np.clip(mean, self._ratios[0] * table, self._ratios[1] * table), std


def latency_cost(table, space: SearchSpace, scale: float = 1.0):
    """``arch -> predicted ms``: the table sum corrected by a :class:`TableLatencyPredictor` fitted on the
    table's whole-subnet measurements, times ``scale`` (the drift correction of
    :mod:`supernet.hardware.drift`); cached per arch. A table built before kernel counts were stored has
    them counted now."""
    archs, ms = table.measured(space)
    kernels = table.kernels if table.kernels else count_unit_kernels(table, space, table.cfg.batch)
    model = TableLatencyPredictor(space, units=table.units, kernels=kernels).fit(archs, ms)

    @lru_cache(maxsize=None)
    def cost(arch: Arch) -> float:
        return scale * float(model.predict([arch])[0][0])
    return cost
