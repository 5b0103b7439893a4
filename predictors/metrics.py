"""Ranking and error metrics for accuracy predictors: small pure functions.

All take ``y_true`` and ``y_pred`` as 1-D array-likes of equal length (at least 2
for the rank correlations) and return a Python float.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from supernet.core.errors import SupernetError


def _pair(y_true, y_pred, least: int = 1) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise SupernetError(f"y_true and y_pred differ in length ({t.size} vs {p.size}); pass one prediction per target")
    if t.size < least:
        raise SupernetError(f"need at least {least} values, got {t.size}")
    return t, p


def kendall_tau(y_true, y_pred) -> float:
    """Kendall's tau-b rank correlation.

    ``tau_b = (C - D) / sqrt((C + D + T_t) * (C + D + T_p))`` over all pairs i < j, where
    C / D count concordant / discordant pairs and T_t / T_p pairs tied only in y_true /
    only in y_pred. 1 = same order, -1 = reversed. NaN if either side is constant.
    """
    t, p = _pair(y_true, y_pred, least=2)
    return float(stats.kendalltau(t, p).statistic)


def spearman(y_true, y_pred) -> float:
    """Spearman's rho: Pearson correlation of the ranks (ties get their average rank).

    Without ties ``rho = 1 - 6 * sum(d_i^2) / (n (n^2 - 1))``, ``d_i`` the rank difference.
    """
    t, p = _pair(y_true, y_pred, least=2)
    return float(stats.spearmanr(t, p).statistic)


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in %: ``100 / n * sum(|y_pred - y_true| / |y_true|)``.

    Targets equal to 0 are an error (the relative error is undefined).
    """
    t, p = _pair(y_true, y_pred)
    if np.any(t == 0):
        raise SupernetError("mape is undefined for a target equal to 0; use an absolute error instead")
    return float(100.0 * np.mean(np.abs(p - t) / np.abs(t)))


def within(y_true, y_pred, tol: float = 0.10) -> float:
    """Share (0..1) of predictions within ``tol`` relative error: ``mean(|y_pred - y_true| <= tol * |y_true|)``."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) <= tol * np.abs(t)))
