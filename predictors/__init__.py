"""Accuracy predictors over a search space's encoding, and ranking metrics.

    from predictors import make_predictor, load_predictor
    p = make_predictor("auto", space, seed=0).fit(archs, accuracies)   # picks its model by CV Kendall tau
    mean, std = p.predict(candidates)
    p.save("predictor.json"); p2 = load_predictor("predictor.json", space)
"""
from .auto import AutoPredictor
from .base import MIN_ARCHS, Predictor
from .ensemble import EnsemblePredictor
from .factory import PREDICTORS, load_predictor, make_predictor
from .features import FEATURE_KINDS, FeatureMap
from .metrics import kendall_tau, mape, spearman, within
from .models import GBTPredictor, MLPPredictor, RidgePredictor

__all__ = ["MIN_ARCHS", "Predictor", "RidgePredictor", "MLPPredictor", "GBTPredictor", "EnsemblePredictor", "AutoPredictor",
           "PREDICTORS", "make_predictor", "load_predictor", "FeatureMap", "FEATURE_KINDS",
           "kendall_tau", "spearman", "mape", "within"]
