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
from ..data.image_transforms import IMAGENET_MEAN, IMAGENET_STD
from ..data.load import load_data
from ..io.checkpoint import load_checkpoint, resolve_checkpoint, run_of
from ..io.export import export_subnet
from ..io.runs import check_apart, check_writable
from ..layers.calibration import calibrate_bn


def checkpoint_data(meta: dict, calib_batches: int, data: str | None = None):
    """The data a checkpoint was trained on (from its saved config), or ``data`` (a ``--data`` value:
    ``imagefolder:PATH`` or ``packed:PATH``) in its place, and its fixed BN-calibration batches
    (``calib_batches`` >= 1 batches of 256 training inputs).

    The one place a run's data is resolved: ``eval``, ``search``, ``export`` and ``finetune`` (and their
    API twins) pass their ``data`` here. A run of imported weights (``supernet import``) records no data,
    so it needs ``data``; a run that has data of its own takes ``data`` instead of it. Either way
    ``data`` must fit the run's head (:func:`check_fits`). Images are read at the run's largest
    resolution and resized per arch by the supernet, as for the run's own data."""
    if calib_batches < 1:
        raise SupernetError(f"--calib-batches must be >= 1, got {calib_batches}")
    train = meta["train"]
    if not data and not train.get("data"):  # a run of imported weights (supernet import) records no data
        source = meta.get("imported", {})
        raise SupernetError(f"this run holds weights imported from {source.get('source', 'elsewhere')} "
                            f"({source.get('net', '?')}) and no data set to recalibrate BN or score on; give it "
                            "yours with --data imagefolder:PATH or packed:PATH (ImageNet layout, its classes), or "
                            "continue training it on yours with `supernet train --init RUN`")
    options = get_space(meta["space"]).make_options(saved_space_options(train)) if "space" in meta else None
    loaded = load_data(data or train["data"], samples=None if data else train.get("samples"),
                       val_fraction=train.get("val_fraction", 0.1), seed=train["seed"],
                       workers=train.get("data_workers", 2),
                       reader=options.reader_options() if options is not None else {})
    if data:
        check_fits(meta, loaded, data)
    if meta.get("image_size"):
        loaded.set_image_size(meta["image_size"])
    return loaded, loaded.calibration_batches(calib_batches, 256, train["seed"])


def check_fits(meta: dict, data, name: str) -> None:
    """Refuse, in one line, ``data`` (named ``name``) that does not fit the run of ``meta``: another
    number of classes than the head's, other input shape (arrays) or image channels than the run's, or another normalisation
    (``(x - mean) / std``) than the run's own data used; an imported run's is ImageNet's mean/std,
    the one OFA's nets (and ImageNet-trained nets generally) were trained with."""
    own, config = meta.get("data") or {}, meta.get("space_config") or {}
    info = data.info()
    classes = own.get("num_classes", config.get("num_classes"))
    if classes is not None and info.num_classes != classes:
        raise SupernetError(f"--data {name} has {info.num_classes} classes but the run's classifier has {classes}; "
                            "evaluate on data with its classes, or replace the classifier by training on yours: "
                            "`supernet train --init RUN --data ...`")
    shape, trained_on = list(info.sample_shape), own.get("input_shape")
    if len(shape) == 3:  # images (C, H, W), read at the run's size: the channels must be the same
        channels = trained_on[0] if trained_on else config.get("in_channels")
        if channels is not None and shape[0] != channels:
            raise SupernetError(f"--data {name} holds {shape[0]}-channel images but the run's network takes {channels}")
    elif trained_on is not None and shape != list(trained_on):  # arrays keep their stored shape
        raise SupernetError(f"--data {name} holds inputs of shape {shape} but the run was trained on {list(trained_on)}")
    want = (own.get("mean"), own.get("std")) if own else (IMAGENET_MEAN, IMAGENET_STD) if meta.get("imported") \
        else (None, None)
    have = (getattr(data, "mean", None), getattr(data, "std", None))
    if want[0] is not None and have[0] is not None and not all(
            abs(a - b) < 1e-6 for w, h in zip(want, have) for a, b in zip(w, h)):
        raise SupernetError(f"--data {name} normalises with mean {list(have[0])} / std {list(have[1])}, but the run "
                            f"was trained with mean {list(want[0])} / std {list(want[1])}")


def export_from_checkpoint(checkpoint: str | os.PathLike, arch: Arch | str, out: str | os.PathLike, *,
                           onnx: bool = True, overwrite: bool = False, calib_batches: int = 8,
                           extra: dict | None = None, data: str | None = None) -> Path:
    """Recalibrate BN for ``arch`` on the checkpoint's training data, or on ``data`` in its place
    (:func:`checkpoint_data`), on the CPU, then :func:`export_subnet`; ``arch.json`` records ``data`` as
    ``calibration_data`` (``supernet finetune`` trains on it by default). ``out`` may not be, contain or
    sit inside the checkpoint's run."""
    check_apart(out, [run_of(checkpoint)])
    check_writable(out)
    model, meta = load_checkpoint(checkpoint)
    arch = model.space.load_arch(arch) if isinstance(arch, str) else model.space.make(arch)
    _, calib = checkpoint_data(meta, calib_batches, data)
    calibrate_bn(model, lambda x: model(model.prepare_input(x, arch), arch), calib)
    # the data it was trained on (normalisation included) and the checkpoint `supernet finetune` distils from
    extra = {"data": meta.get("data"), "checkpoint": str(resolve_checkpoint(checkpoint).resolve()), **({"calibration_data": data} if data else {}), **(extra or {})}
    return export_subnet(model, meta["space"], arch, out, onnx=onnx, overwrite=overwrite, extra=extra)
