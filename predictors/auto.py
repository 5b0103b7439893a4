"""The predictor that fits the space: per fit, the candidate model with the best cross-validated rank.

No single model ranks every space best: the MLP wins on DyNAS-T's near-additive OFA table,
trees where choices interact (our MNIST-1D pools), ridge on tiny training sets. ``auto``
decides on the archs it is given, each time it is fitted (so once per search round):

    folds  = K seeded folds of the training archs (``rng([seed, 17])``)
    oof_c  = out-of-fold predictions of candidate c (fitted K times, on K-1 folds each)
    blends = every candidate alone, every pair of them, and all of them together
    oof_S  = mean_{c in S} oof_c                        (no extra fits: models predict z)
    score_S = Kendall tau(z, oof_S)                     (pooled over all training archs)
    chosen  = argmax_S score_S                          (ties to the earlier, smaller blend)

Every member of ``chosen`` is then refitted on every arch; ``predict`` returns the mean of
their predictions and, as the uncertainty, the spread of the blend's K fold models:

    m_k(x) = mean_{c in S} m_{c,k}(x),   std(x) = sqrt((1/K) sum_k (m_k(x) - mean_k m_k(x))^2)

which is cheap (the fold models exist already) and grows where the data does not pin the
model down. Deterministic for a fixed seed.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace

from .base import MIN_ARCHS, Predictor
from .metrics import kendall_tau
from .models import BASE_MODELS

FAST_GBT = {"n_estimators": 200, "learning_rate": 0.1}  # a third of the single GBT's cost, per depth
DEFAULT_CANDIDATES = (("ridge", {}), ("mlp", {}), ("gbt", {**FAST_GBT, "max_depth": 2}),
                      ("gbt", {**FAST_GBT, "max_depth": 4}))


def _tau(z: np.ndarray, pred: np.ndarray) -> float:
    """Kendall tau, -1 where undefined (constant predictions)."""
    tau = kendall_tau(z, pred) if np.ptp(pred) > 0 else np.nan
    return -1.0 if np.isnan(tau) else float(tau)


def candidate_name(name: str, options: dict) -> str:
    """``"gbt"``, ``"gbt-d4"`` (a GBT of fixed depth) or ``"mlp*"`` (other options): how logs name a candidate."""
    if name == "gbt" and set(options) <= {"max_depth", *FAST_GBT} and np.ndim(options.get("max_depth", ())) == 0:
        return f"gbt-d{options['max_depth']}"
    return name if not options else f"{name}*"


class AutoPredictor(Predictor):
    """Cross-validated choice among ``candidates`` (pairs ``(base model name, options)``), see the module doc.

    ``blend=False`` chooses among single candidates only. After ``fit``, ``chosen`` names the
    choice and ``scores`` holds every blend's out-of-fold Kendall tau.
    """

    kind = "auto"

    def __init__(self, space: SearchSpace, seed: int = 0, candidates: Sequence = DEFAULT_CANDIDATES, folds: int = 3,
                 blend: bool = True):
        pairs = [(c, {}) if isinstance(c, str) else (c[0], dict(c[1])) for c in candidates]
        unknown = sorted({n for n, _ in pairs} - set(BASE_MODELS))
        if unknown or not pairs:
            raise SupernetError(f"auto candidates must be names from {sorted(BASE_MODELS)}, got {unknown or 'none'}")
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise SupernetError(f"auto predictor folds must be an integer >= 2, got {folds!r}")
        super().__init__(space, seed, candidates=[[n, o] for n, o in pairs], folds=folds, blend=bool(blend))
        self.chosen: str | None = None
        self.scores: dict[str, float] = {}
        self._models: list[Predictor] = []
        self._fold_models: list[Predictor] = []
        self._blend: tuple[int, ...] | None = None  # the chosen candidates; given before fit: kept (see refit)

    def _make(self, i: int, salt: int) -> Predictor:
        name, options = self.options["candidates"][i]
        return BASE_MODELS[name](self.space, seed=self.seed * 1000 + salt, **options)

    def _folds(self, n: int) -> list[np.ndarray]:
        k = max(2, min(self.options["folds"], n // 2))
        order = np.random.default_rng([self.seed, 17]).permutation(n)
        return np.array_split(order, k)

    def _cross_validate(self, i: int, archs: list[Arch], z: np.ndarray, parts) -> tuple[np.ndarray, list[Predictor]]:
        """Out-of-fold predictions of candidate ``i`` and its fold models."""
        oof, models = np.zeros(len(z)), []
        for k, test in enumerate(parts):
            train = np.concatenate([p for j, p in enumerate(parts) if j != k])
            model = self._make(i, k + 1).fit([archs[t] for t in train], z[train])
            oof[test] = model.predict([archs[t] for t in test])[0]
            models.append(model)
        return oof, models

    def _blends(self) -> list[tuple[int, ...]]:
        n = len(self.options["candidates"])
        if not self.options["blend"]:
            return [(i,) for i in range(n)]
        singles_and_pairs = [(i,) for i in range(n)] + list(itertools.combinations(range(n), 2))
        return singles_and_pairs + ([tuple(range(n))] if n > 2 else [])

    def refit(self, archs, y) -> "AutoPredictor":
        """A new predictor fitted on ``archs, y`` with this one's chosen blend, without choosing again (no
        out-of-fold scores): its members and their K fold models are fitted as in ``fit``."""
        if self._blend is None:
            raise SupernetError("auto predictor is not fitted; call fit(archs, y) before refit")
        new = type(self)(self.space, self.seed, **self.options)
        new._blend = self._blend
        return new.fit(archs, y)

    def quick(self, archs, y) -> "AutoPredictor":
        """A new predictor fitted on ``archs, y`` with the first candidate alone (ridge by default), without
        choosing (no out-of-fold scores): what a cheap search fits before its data is worth a choice."""
        new = type(self)(self.space, self.seed, **self.options)
        new._blend = (0,)
        return new.fit(archs, y)

    def _fit(self, archs: list[Arch], z: np.ndarray) -> None:
        parts = self._folds(len(archs))
        names = [candidate_name(n, o) for n, o in self.options["candidates"]]
        if len(archs) - max(len(p) for p in parts) < MIN_ARCHS:  # too few to cross-validate: the first candidate
            self.scores, self.chosen, self._blend = {}, names[0], (0,)
            self._models = [self._make(0, 0).fit(archs, z)]
            self._fold_models = [self._models]
            return
        best = self._blend
        chosen = range(len(names)) if best is None else best
        runs = {i: self._cross_validate(i, archs, z, parts) for i in chosen}
        if best is None:
            self.scores = {"+".join(names[i] for i in b): _tau(z, np.mean([runs[i][0] for i in b], axis=0))
                           for b in self._blends()}
            best = self._blends()[int(np.argmax(list(self.scores.values())))]  # first of equal scores
        self._blend, self.chosen = best, "+".join(names[i] for i in best)
        self._fold_models = [[runs[i][1][k] for i in best] for k in range(len(parts))]
        self._models = [self._make(i, 0).fit(archs, z) for i in best]

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean and the spread of the K fold blends, every model reading one shared encoding."""
        codes, active = self.space.encode_many(archs)
        features: dict[str, np.ndarray] = {}

        def value(m: Predictor) -> np.ndarray:
            kind = m.features.kind
            if kind not in features:
                features[kind] = m.features.from_codes(codes, active)
            return m.predict_features(features[kind])
        mean = np.mean([value(m) for m in self._models], axis=0)
        folds = np.stack([np.mean([value(m) for m in ms], axis=0) for ms in self._fold_models])  # (K, n)
        return mean, folds.std(axis=0)
