"""The public Python API, one function per CLI subcommand."""
from __future__ import annotations

import os
from typing import Iterable

from .arch import Arch
from .checkpoint import load_checkpoint
from .data import calibration_batches, load_data
from .evaluation import evaluate_arch
from .exporter import export_from_checkpoint as export, load_exported  # noqa: F401
from .training import TrainConfig, resume_training, train  # noqa: F401


def evaluate(checkpoint: str | os.PathLike, archs: Iterable[Arch | str | dict], splits=("val", "test"),
             calib_batches: int = 8) -> list[dict]:
    """Evaluate archs of a trained supernet; one dict per arch with accuracy per split, FLOPs (MACs), params.

    An arch is an :class:`Arch`, a dict, JSON text, a JSON file path, or ``largest|smallest|median``.
    """
    model, meta = load_checkpoint(checkpoint)
    train_cfg = meta["train"]
    data = load_data(train_cfg["data"], samples=train_cfg.get("samples"), seed=train_cfg["seed"])
    calib = calibration_batches(data.train, 256, calib_batches, train_cfg["seed"])
    chosen = {name: getattr(data, name) for name in splits}
    results = []
    for arch in archs:
        arch = model.space.load_arch(arch) if isinstance(arch, str) else model.space.make(arch)
        results.append({"arch": arch.to_dict(), **evaluate_arch(model, arch, calib, chosen)})
    return results
