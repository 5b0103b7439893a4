"""The evaluator of a trained supernet's checkpoint: the validation score, FLOPs and params of an arch."""
from __future__ import annotations

import os

from ..core.arch import Arch
from ..core.contract import hook
from ..core.placement import CPU, Placement
from ..core.task import task_of_run
from ..io.checkpoint import load_checkpoint, resolve_checkpoint
from .recalibrated import checkpoint_data
from .subnet import evaluate_arch


class CheckpointEvaluator:
    """``evaluator(arch) -> {"accuracy", "flops", "params"}`` for the archs of a trained supernet.

    The checkpoint is loaded once; the data and the BN calibration batches (``calib_batches``
    batches of 256 training inputs, as ``supernet eval`` uses) are built once, on the first
    call, from the checkpoint's own data or ``data`` in its place (:func:`.recalibrated.checkpoint_data`).
    Accuracy is on the validation split with BN recalibrated for the arch; FLOPs (MACs) and params are exact (``costs`` holds them as functions of the arch).
    """

    def __init__(self, checkpoint: str | os.PathLike, calib_batches: int = 8, placement: Placement | None = None,
                 data: str | None = None):
        self.placement = placement or CPU
        model, self.meta = load_checkpoint(checkpoint)
        self.model, self.task = self.placement.model(model), task_of_run(self.meta)
        self.folder = resolve_checkpoint(checkpoint).resolve()
        self.space, self.calib_batches, self.data, self._data = self.model.space, calib_batches, data, None
        self.costs = {"flops": hook(self.model, "flops"), "params": hook(self.model, "params")}

    def load_data(self) -> None:
        """Build the data and BN batches now (else on the first call)."""
        if self._data is None:
            self._data = checkpoint_data(self.meta, self.calib_batches, self.data)

    def check_data(self) -> None:
        """Build the data now when ``data`` was given (its classes, channels, normalisation checked) or the run
        has none of its own (imported weights: the one-line refusal that names ``--data``), so that a command
        stops before it writes anything; else leave it to the first call."""
        if self.data or not self.meta.get("train", {}).get("data"):
            self.load_data()

    def loaded_data(self):
        """``(data, calibration batches)``, built on first use."""
        self.load_data()
        return self._data

    def __call__(self, arch: Arch) -> dict:
        data, calib = self.loaded_data()
        result = evaluate_arch(self.model, arch, calib, data, ["val"], self.task, self.placement)
        name = self.task.score_name
        return {name: result[f"val_{name}"], "flops": result["flops"], "params": result["params"]}
