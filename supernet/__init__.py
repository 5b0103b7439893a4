"""One-shot NAS engine: train a weight-entangled supernet once, search and export subnets.

The API mirrors the CLI: ``train`` (``supernet train``), ``evaluate`` (``supernet eval``),
``export`` (``supernet export``), plus ``load_exported`` to use an export.
"""
from .arch import Arch, Dimension, SearchSpace
from .errors import SupernetError

__all__ = ["Arch", "Dimension", "SearchSpace", "SupernetError", "TrainConfig", "train", "resume_training",
           "evaluate", "export", "load_exported"]


def __getattr__(name):  # keep `import supernet` light: torch-heavy parts load on first use
    if name in ("TrainConfig", "train", "resume_training", "evaluate", "export", "load_exported"):
        from . import api
        return getattr(api, name)
    raise AttributeError(name)
