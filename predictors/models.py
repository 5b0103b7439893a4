"""Single-model predictors: ridge (one-hot), MLP and gradient-boosted trees (ordinal values).

Default features were chosen by 5-fold CV inside 200-arch training sets of the DyNAS-T
OFA data (never on benchmark test splits): the MLP ranks better on ordinal values than
on one-hot (Kendall tau 0.940 vs 0.927), trees too (0.901 vs 0.890), ridge better on
one-hot (0.897 vs 0.888). Each model is deterministic for a fixed seed (scikit-learn
``random_state``; same machine and BLAS thread count) and reports ``std = 0``; the
ensemble gives the uncertainty.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from supernet.core.arch import Arch
from supernet.core.space import SearchSpace

from .base import Predictor
from .features import FeatureMap
from .metrics import kendall_tau


class _SklearnPredictor(Predictor):
    """A feature map followed by one scikit-learn regressor built by ``_make_model()``."""

    def __init__(self, space: SearchSpace, seed: int = 0, **options):
        super().__init__(space, seed, **options)
        self.features = FeatureMap(space, self.options["features"])
        self._model = None

    def _make_model(self):
        raise NotImplementedError

    def _fit(self, archs: list[Arch], z: np.ndarray) -> None:
        self._fit_matrix(self.features(archs), z)

    def _fit_matrix(self, X: np.ndarray, z: np.ndarray) -> None:
        self._model = self._make_model()
        with warnings.catch_warnings():  # an MLP stopped at max_iter is still a usable, deterministic fit
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model.fit(X, z)

    def _predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        mean = self._model.predict(self.features(archs))
        return mean, np.zeros_like(mean)

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        """The predicted mean (target units) of rows ``X`` already mapped by ``self.features``: what ``predict``
        gives for their archs, without encoding them again."""
        return self._model.predict(X) * self._scale + self._shift


class RidgePredictor(_SklearnPredictor):
    """Ridge regression ``min ||z - Xw - b||^2 + alpha ||w||^2`` on one-hot features.

    ``alpha`` is picked from ``alphas`` by efficient leave-one-out CV on the training set.
    Ridge has no randomness; ``seed`` is kept only for the common interface.
    """

    kind = "ridge"

    def __init__(self, space: SearchSpace, seed: int = 0, features: str = "onehot",
                 alphas: Sequence[float] = (0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0)):
        super().__init__(space, seed, features=features, alphas=list(alphas))

    def _make_model(self):
        return RidgeCV(alphas=self.options["alphas"])


class MLPPredictor(_SklearnPredictor):
    """A small MLP (ReLU, ``hidden`` layer sizes, L-BFGS, L2 penalty ``alpha``) on standardised features.

    Deterministic for a fixed seed: the seed sets the initial weights. L-BFGS suits
    the small training sets (50-500 archs) better than SGD-type solvers.
    """

    kind = "mlp"

    def __init__(self, space: SearchSpace, seed: int = 0, features: str = "ordinal",
                 hidden: Sequence[int] = (32,), alpha: float = 1.0, max_iter: int = 1000):
        super().__init__(space, seed, features=features, hidden=list(hidden), alpha=alpha, max_iter=max_iter)

    def _make_model(self):
        o = self.options
        mlp = MLPRegressor(hidden_layer_sizes=tuple(o["hidden"]), alpha=o["alpha"], solver="lbfgs",
                           max_iter=o["max_iter"], random_state=self.seed)
        return make_pipeline(StandardScaler(), mlp)


class GBTPredictor(_SklearnPredictor):
    """Gradient-boosted regression trees (squared error) on ordinal choice values.

    ``max_depth`` may list several depths: the one with the best mean Kendall tau over
    ``cv_folds`` folds of the training archs (folds from ``seed``; ties to the shallower)
    is refitted on all of them. Depth is how many dimensions a tree can combine: MNIST-1D
    pools, where the input resolution changes every other dimension's effect, want 3-4;
    DyNAS-T's near-additive OFA table wants 2 (tau at 200 archs, depth 2 / 4: 0.82 / 0.86
    on the first 850 archs of our 8,000-example-validation MNIST-1D pool, 0.92 / 0.90 on
    DyNAS-T; the CV pick: 0.853 on the whole pool, 0.922 on DyNAS-T).
    """

    kind = "gbt"

    def __init__(self, space: SearchSpace, seed: int = 0, features: str = "ordinal", n_estimators: int = 600,
                 learning_rate: float = 0.05, max_depth: int | Sequence[int] = (2, 3, 4), subsample: float = 0.8,
                 cv_folds: int = 3):
        depths = [int(max_depth)] if np.ndim(max_depth) == 0 else [int(d) for d in max_depth]
        super().__init__(space, seed, features=features, n_estimators=n_estimators, learning_rate=learning_rate,
                         max_depth=depths, subsample=subsample, cv_folds=cv_folds)
        self.depth = depths[0]

    def _make_model(self, depth: int | None = None):
        o = self.options
        return GradientBoostingRegressor(n_estimators=o["n_estimators"], learning_rate=o["learning_rate"],
                                         max_depth=depth or self.depth, subsample=o["subsample"],
                                         random_state=self.seed)

    def _fit_matrix(self, X: np.ndarray, z: np.ndarray) -> None:
        depths, folds = self.options["max_depth"], self.options["cv_folds"]
        if len(depths) > 1 and len(X) >= 4 * folds:
            order = np.random.default_rng([self.seed, 31]).permutation(len(X))
            parts = np.array_split(order, folds)
            scores = [np.mean([self._fold_tau(X, z, parts, k, d) for k in range(folds)]) for d in depths]
            self.depth = depths[int(np.argmax(scores))]  # argmax takes the first of equal scores
        super()._fit_matrix(X, z)

    def _fold_tau(self, X: np.ndarray, z: np.ndarray, parts: list, k: int, depth: int) -> float:
        test = parts[k]
        train = np.concatenate([p for i, p in enumerate(parts) if i != k])
        pred = self._make_model(depth).fit(X[train], z[train]).predict(X[test])
        tau = kendall_tau(z[test], pred)
        return -1.0 if np.isnan(tau) else tau


BASE_MODELS: dict[str, type[Predictor]] = {"ridge": RidgePredictor, "mlp": MLPPredictor, "gbt": GBTPredictor}
