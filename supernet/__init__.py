"""One-shot NAS engine: train a weight-entangled supernet once, search and export subnets.

One import line for everything README shows; the API mirrors the CLI: ``train``
(``supernet train``), ``evaluate`` (``supernet eval``), ``search`` (``supernet search``),
``export`` (``supernet export``), ``build_latency`` / ``measure_arch`` (``supernet latency``),
``space_names`` (``supernet spaces``), ``finetune`` (``supernet finetune``), ``pack_data``
(``supernet data pack``), ``import_ofa`` / ``import_weights`` (``supernet import``); plus ``load_exported`` to
use an export and ``run_search`` to search any space with any evaluator (``RayEvaluator`` spreads
it over Ray actors; ``train(..., scale=ScaleConfig(workers))`` trains on Ray Train workers).
Torch-heavy parts, and Ray, load on first use. The stages live in subpackages
(``docs/architecture.md``): ``core``, ``layers``, ``data``, ``io``, ``evaluation``, ``training``,
``nas``, ``hardware``, ``distributed``, ``cli``; this module and :mod:`supernet.api` are the front door.
"""
from importlib import import_module

from .core.arch import Arch, Dimension
from .core.errors import SupernetError
from .core.space import SearchSpace
from .moved import install as _install_moved_names

_install_moved_names()  # the previous layout's module names import with a warning naming the new place

_LAZY = {
    "TrainConfig": "training.train_config", "ScaleConfig": "training.train_config", "FinetuneConfig": "training.train_config",
    "train": "api", "resume_training": "api", "evaluate": "api", "search": "api", "export": "api",
    "export_from_search": "api", "finetune": "api", "run_search": "api", "pack_data": "api",
    "import_weights": "api", "import_ofa": "api",
    "search_targets": "api_targets", "run_search_targets": "nas.targets",
    "load_exported": "io.export", "CheckpointEvaluator": "evaluation.checkpoint",
    "SearchConfig": "nas.search_config", "SearchResult": "nas.search_config", "SearchWarning": "nas.search_config",
    "hypervolume": "nas.pareto", "TooManyFailures": "nas.store", "pick_from_search": "nas.outputs",
    "Failure": "evaluation.evaluators", "LocalEvaluator": "evaluation.evaluators",
    "RayEvaluator": "distributed.evaluate",
    "build_latency": "hardware.latency_api", "measure_arch": "hardware.latency_api", "MeasureConfig": "hardware.rounds",
    "space_names": "core.registry", "register_space": "core.registry", "build_supernet": "core.registry",
    "space_config": "core.registry", "contract_problems": "core.contract_check", "SpaceOptions": "core.options",
    "Trainer": "training.trainer", "Placement": "core.placement", "make_task": "core.task",
    "ClassificationTask": "core.task", "LanguageModelTask": "core.task",
}

__all__ = ["Arch", "Dimension", "SearchSpace", "SupernetError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'supernet' has no attribute {name!r}")
