"""Predictors by name: ``make_predictor(name, space, seed)`` and ``load_predictor(path, space)``."""
from __future__ import annotations

import inspect
import os

from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace
from supernet.io.files import read_json

from .auto import AutoPredictor
from .base import Predictor, check_state
from .ensemble import EnsemblePredictor
from .models import BASE_MODELS

PREDICTORS: dict[str, type[Predictor]] = {**BASE_MODELS, "ensemble": EnsemblePredictor, "auto": AutoPredictor}


def _class_of(name: str) -> type[Predictor]:
    if name not in PREDICTORS:
        raise SupernetError(f"unknown predictor {name!r}; choose one of {sorted(PREDICTORS)}")
    return PREDICTORS[name]


def make_predictor(name: str, space: SearchSpace, seed: int = 0, **options) -> Predictor:
    """An unfitted predictor of kind ``name`` (``ridge``, ``mlp``, ``gbt``, ``ensemble``, ``auto``)."""
    cls = _class_of(name)
    try:
        inspect.signature(cls).bind(space, seed=seed, **options)
    except TypeError as exc:
        raise SupernetError(f"bad options for predictor {name!r} ({exc}); see help({cls.__name__})") from None
    return cls(space, seed=seed, **options)


def load_predictor(path: str | os.PathLike, space: SearchSpace) -> Predictor:
    """Load a predictor of any kind saved with ``save``; refits it deterministically."""
    data = read_json(path, "predictor file")
    check_state(data)
    return _class_of(str(data["kind"])).from_state(data, space)
