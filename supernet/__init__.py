"""One-shot NAS engine: train a weight-entangled supernet once, search and export subnets.

One import line for everything README shows; the API mirrors the CLI: ``train``
(``supernet train``), ``evaluate`` (``supernet eval``), ``search`` (``supernet search``),
``export`` (``supernet export``), ``build_latency`` / ``measure_arch`` (``supernet latency``),
``space_names`` (``supernet spaces``), ``finetune`` (``supernet finetune``); plus ``load_exported`` to
use an export and ``run_search`` to search any space with any evaluator (``RayEvaluator`` spreads
it over Ray actors; ``train(..., scale=ScaleConfig(workers))`` trains on Ray Train workers).
Torch-heavy parts, and Ray, load on first use.
"""
from importlib import import_module

from .arch import Arch, Dimension, SearchSpace
from .errors import SupernetError

_LAZY = {
    "TrainConfig": "training", "train": "training", "resume_training": "training", "ScaleConfig": "train_config",
    "evaluate": "api", "search": "api", "CheckpointEvaluator": "api",
    "export": "api", "export_from_search": "api", "load_exported": "exporter",
    "finetune": "finetuning", "FinetuneConfig": "train_config",
    "SearchConfig": "search_loop", "SearchResult": "search_loop", "run_search": "search_loop",
    "hypervolume": "search_loop", "SearchWarning": "search_loop", "TooManyFailures": "search_loop",
    "Failure": "evaluators", "LocalEvaluator": "evaluators", "RayEvaluator": "ray_eval",
    "pick_from_search": "search_outputs",
    "build_latency": "latency_api", "measure_arch": "latency_api",
    "space_names": "registry", "register_space": "registry", "build_supernet": "registry",
    "space_config": "registry",
    "Trainer": "trainer", "Placement": "device", "make_task": "task",
    "ClassificationTask": "task", "LanguageModelTask": "task", "contract_problems": "contract",
}

__all__ = ["Arch", "Dimension", "SearchSpace", "SupernetError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'supernet' has no attribute {name!r}")
