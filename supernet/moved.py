"""Modules that moved: their old names still import, with a ``DeprecationWarning`` naming the new place.

``MOVED`` maps an old module to the modules that now hold its names, first match wins. An import of
an old name (``from supernet.arch import Arch``) gets a stand-in module whose attributes are read from
those modules. CHANGELOG.md lists the same table for readers; a test keeps the two equal and checks
that every old name still resolves. Installed by ``supernet/__init__.py``.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED: dict[str, tuple[str, ...]] = {
    # the flat layout before the stage folders (7bd7f64)
    "supernet.arch": ("supernet.core.arch", "supernet.core.space"),
    "supernet.calibration": ("supernet.layers.calibration",),
    "supernet.checkpoint": ("supernet.io.checkpoint",),
    "supernet.cli_finetune": ("supernet.cli.finetune",),
    "supernet.cli_latency": ("supernet.cli.latency",),
    "supernet.contract": ("supernet.core.contract", "supernet.core.contract_check"),
    "supernet.device": ("supernet.core.placement",),
    "supernet.elastic": ("supernet.layers.elastic",),
    "supernet.errors": ("supernet.core.errors",),
    "supernet.evaluators": ("supernet.evaluation.evaluators",),
    "supernet.exporter": ("supernet.io.export",),
    "supernet.finetuning": ("supernet.training.finetune", "supernet.training.teacher"),
    "supernet.image_transforms": ("supernet.data.image_transforms",),
    "supernet.imagefolder": ("supernet.data.imagefolder", "supernet.data.image_scan"),
    "supernet.latency": ("supernet.hardware.rounds", "supernet.hardware.timers"),
    "supernet.latency_api": ("supernet.hardware.latency_api",),
    "supernet.latency_table": ("supernet.hardware.latency_table",),
    "supernet.layout": ("supernet.layers.layout",),
    "supernet.lora": ("supernet.layers.lora",),
    "supernet.losses": ("supernet.core.losses",),
    "supernet.ray_cluster": ("supernet.distributed.cluster",),
    "supernet.ray_eval": ("supernet.distributed.evaluate",),
    "supernet.ray_train": ("supernet.distributed.train",),
    "supernet.registry": ("supernet.core.registry",),
    "supernet.runs": ("supernet.io.runs", "supernet.io.files"),
    "supernet.sampling": ("supernet.training.sampling",),
    "supernet.search_loop": ("supernet.nas.loop", "supernet.nas.search_config"),
    "supernet.search_outputs": ("supernet.nas.outputs", "supernet.nas.store", "supernet.nas.picks"),
    "supernet.search_problem": ("supernet.nas.problem", "supernet.nas.pareto", "supernet.nas.metrics",
                                "supernet.nas.plan"),
    "supernet.task": ("supernet.core.task",),
    "supernet.text_data": ("supernet.data.text",),
    "supernet.train_config": ("supernet.training.train_config",),
    "supernet.trainer": ("supernet.training.trainer",),
    # file names that now say what they hold (issue 30)
    "supernet.hardware.table": ("supernet.hardware.latency_table",),
    "supernet.hardware.tables": ("supernet.hardware.latency_api",),
    "supernet.hardware.measure": ("supernet.hardware.rounds",),
    "supernet.hardware.measured": ("supernet.hardware.subnet_latency",),
    "supernet.training.config": ("supernet.training.train_config",),
    "supernet.nas.config": ("supernet.nas.search_config",),
}


class MovedModule(types.ModuleType):
    """Stands in for an old module: each attribute comes from the first new module that has it."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"moved to {', '.join(targets)}")
        self.__targets = targets

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                warnings.warn(f"{self.__name__}.{attr} moved to {target}.{attr}; import it from there "
                              "(CHANGELOG.md lists the moved names)", DeprecationWarning, stacklevel=2)
                return getattr(module, attr)
        raise AttributeError(f"{self.__name__} moved to {', '.join(self.__targets)}, and none of them has {attr!r}")


class _MovedLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return MovedModule(spec.name, MOVED[spec.name])

    def exec_module(self, module):
        warnings.warn(f"module {module.__name__} moved to {', '.join(MOVED[module.__name__])} "
                      "(CHANGELOG.md lists the moved names)", DeprecationWarning, stacklevel=2)


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds only the old names of :data:`MOVED`; every other import goes on as usual."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, _MovedLoader())
        return None


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
