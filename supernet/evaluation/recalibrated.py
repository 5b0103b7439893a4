"""A checkpoint's own data, and its subnets exported with BN recalibrated on that data.

Orchestration over the disk room: :mod:`supernet.io` only reads and writes files; loading the data a
checkpoint was trained on and recalibrating BN before an export happen here.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.options import saved_space_options
from ..core.registry import get_space
from ..data.load import load_data
from ..io.checkpoint import load_checkpoint, resolve_checkpoint, run_of
from ..io.export import export_subnet
from ..io.runs import check_apart, check_writable
from ..layers.calibration import calibrate_bn


def checkpoint_data(meta: dict, calib_batches: int):
    """The data a checkpoint was trained on (from its saved config) and its fixed BN-calibration
    batches (``calib_batches`` >= 1 batches of 256 training inputs)."""
    if calib_batches < 1:
        raise SupernetError(f"--calib-batches must be >= 1, got {calib_batches}")
    train = meta["train"]
    if not train.get("data"):  # a run of imported weights (supernet import) records no data
        source = meta.get("imported", {})
        raise SupernetError(f"this run holds weights imported from {source.get('source', 'elsewhere')} "
                            f"({source.get('net', '?')}) and no data set to recalibrate BN or score on; "
                            "give it data, or continue training it on yours")
    options = get_space(meta["space"]).make_options(saved_space_options(train)) if "space" in meta else None
    data = load_data(train["data"], samples=train.get("samples"), val_fraction=train.get("val_fraction", 0.1),
                     seed=train["seed"], workers=train.get("data_workers", 2),
                     reader=options.reader_options() if options is not None else {})
    if meta.get("image_size"):
        data.set_image_size(meta["image_size"])
    return data, data.calibration_batches(calib_batches, 256, train["seed"])


def export_from_checkpoint(checkpoint: str | os.PathLike, arch: Arch | str, out: str | os.PathLike, *,
                           onnx: bool = True, overwrite: bool = False, calib_batches: int = 8,
                           extra: dict | None = None) -> Path:
    """Recalibrate BN for ``arch`` on the checkpoint's training data (on the CPU), then
    :func:`export_subnet`. ``out`` may not be, contain or sit inside the checkpoint's run."""
    check_apart(out, [run_of(checkpoint)])
    check_writable(out)
    model, meta = load_checkpoint(checkpoint)
    arch = model.space.load_arch(arch) if isinstance(arch, str) else model.space.make(arch)
    _, calib = checkpoint_data(meta, calib_batches)
    calibrate_bn(model, lambda x: model(model.prepare_input(x, arch), arch), calib)
    # the data it was trained on (normalisation included) and the checkpoint `supernet finetune` distils from
    extra = {"data": meta.get("data"), "checkpoint": str(resolve_checkpoint(checkpoint).resolve()), **(extra or {})}
    return export_subnet(model, meta["space"], arch, out, onnx=onnx, overwrite=overwrite, extra=extra)
