"""Export a subnet as a standalone static module: safetensors + JSON + ONNX.

The export folder holds ``model.safetensors`` (weights), ``config.json`` (space name,
space config and arch: everything needed to rebuild the module), ``arch.json`` (the
arch with its FLOPs, params and input shape) and ``model.onnx``. Loading it needs no
supernet checkpoint: :func:`load_exported`.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file

from .arch import Arch
from .calibration import calibrate_bn
from .checkpoint import load_checkpoint, load_weights
from .data import checkpoint_data
from .errors import SupernetError
from .registry import config_from_dict, get_space
from .runs import atomic_dir, atomic_write_json, read_json


def input_shape(space_config, arch: Arch, batch: int = 1) -> tuple[int, ...]:
    return (batch, space_config.in_channels) + (arch["r"],) * space_config.ndim


def export_from_checkpoint(checkpoint: str | os.PathLike, arch: Arch | str, out: str | os.PathLike, *,
                           onnx: bool = True, overwrite: bool = False, calib_batches: int = 8) -> Path:
    """Recalibrate BN for ``arch`` on the checkpoint's training data, then :func:`export_subnet`."""
    model, meta = load_checkpoint(checkpoint)
    arch = model.space.load_arch(arch) if isinstance(arch, str) else model.space.make(arch)
    _, calib = checkpoint_data(meta["train"], calib_batches)
    calibrate_bn(model, lambda x: model(model.prepare_input(x, arch), arch), calib)
    return export_subnet(model, meta["space"], arch, out, onnx=onnx, overwrite=overwrite)


def export_subnet(supernet: torch.nn.Module, space: str, arch: Arch, out: str | os.PathLike, *,
                  onnx: bool = True, overwrite: bool = False) -> Path:
    """Write the static subnet of ``arch`` (with the supernet's current BN statistics) to ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise SupernetError(f"export folder {str(out)!r} already exists; pass --overwrite or choose another --out")
    net = supernet.extract(arch).eval()
    cfg = supernet.config
    shape = input_shape(cfg, arch)
    with atomic_dir(out) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
        atomic_write_json(tmp / "config.json", {"space": space, "space_config": cfg.to_dict(), "arch": arch.to_dict()})
        atomic_write_json(tmp / "arch.json", {"space": space, "arch": arch.to_dict(), "flops": supernet.flops(arch),
                                              "params": supernet.params(arch), "input_shape": list(shape)})
        if onnx:
            export_onnx(net, shape, tmp / "model.onnx")
    return out


def export_onnx(net: torch.nn.Module, shape: tuple[int, ...], path: Path) -> None:
    """ONNX graph with a dynamic batch axis; input ``input``, output ``logits``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(shape),), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


def load_exported(folder: str | os.PathLike) -> torch.nn.Module:
    """Rebuild the static module of an export folder and load its weights (eval mode)."""
    folder = Path(folder)
    meta = read_json(folder / "config.json", "export config")
    try:
        entry = get_space(meta["space"])
        cfg = config_from_dict(meta["space"], meta["space_config"])
        arch = entry.build_space(cfg).make(meta["arch"])
    except KeyError as exc:
        raise SupernetError(f"export config {str(folder / 'config.json')!r} lacks {exc}") from None
    net = entry.build_static(cfg, arch)
    load_weights(net, folder / "model.safetensors")
    return net.eval()
