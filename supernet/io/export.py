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

from ..core.arch import Arch
from ..core.contract import describe_preprocessing, hook
from ..core.errors import SupernetError
from ..core.registry import config_from_dict, config_to_dict, get_space
from .checkpoint import load_weights
from .claim import CLAIM
from .files import atomic_dir, atomic_write_json, read_json
from .runs import check_writable, claimed_folder, contents


INPUT_NOTE = ("input_shape is what the exported model takes, (batch, ...); data.input_shape is one example as the data "
              "stores it, before preprocessing")


def export_subnet(supernet: torch.nn.Module, space: str, arch: Arch, out: str | os.PathLike, *,
                  onnx: bool = True, overwrite: bool = False, extra: dict | None = None) -> Path:
    """Write the static subnet of ``arch`` (with the supernet's current BN statistics) to ``out``.

    Weights are written as fp32 CPU tensors whatever device or precision the supernet is on.
    ``arch.json`` records the input shape the subnet takes (inputs must already be at the
    arch's resolution: resize them as ``preprocessing`` says), plus ``extra`` (e.g. the
    accuracy the subnet had when a search picked it).
    """
    out = Path(out)
    check_writable(out)
    with claimed_folder(out, "export folder"):  # one writer; the claim file moves with the finished folder
        if contents(out) and not overwrite:
            raise SupernetError(f"export folder {str(out)!r} already exists; pass --overwrite or choose another --out")
        own_format = hook(supernet, "export_files")  # e.g. Hugging Face + PEFT folders of an LLM space
        with atomic_dir(out, keep=CLAIM) as tmp:
            if own_format is None:
                write_export(tmp, supernet.extract(arch), supernet, space, arch, onnx=onnx, extra=extra)
            else:
                written = own_format(arch, tmp, out.resolve())
                write_arch_json(tmp, supernet, space, arch, extra)
                atomic_write_json(tmp / "config.json", {**export_config(supernet, space, arch), **written})
    return out


def export_config(supernet: torch.nn.Module, space: str, arch: Arch) -> dict:
    """``config.json`` of an export: everything needed to rebuild the static module."""
    return {"space": space, "space_config": config_to_dict(supernet.config), "arch": arch.to_dict(),
            "input_shape": [1, *supernet.space.input_shape(arch)]}


def write_arch_json(folder: Path, supernet: torch.nn.Module, space: str, arch: Arch, extra: dict | None) -> None:
    """``arch.json``: the arch, its exact costs, the input shape the exported module takes and what
    ``prepare_input`` does to data first (``preprocessing``: the space's own line, else what it is seen
    doing to a batch of the data's shape, from ``extra["data"]``), plus ``extra``."""
    sample_shape = ((extra or {}).get("data") or {}).get("input_shape")
    atomic_write_json(folder / "arch.json", {"space": space, "arch": arch.to_dict(),
                                             "flops": hook(supernet, "flops")(arch),
                                             "params": hook(supernet, "params")(arch),
                                             "input_shape": [1, *supernet.space.input_shape(arch)],
                                             "input_note": INPUT_NOTE,
                                             "preprocessing": describe_preprocessing(supernet, arch, sample_shape),
                                             **(extra or {})})


def write_export(folder: Path, net: torch.nn.Module, supernet: torch.nn.Module, space: str, arch: Arch, *,
                 onnx: bool = True, extra: dict | None = None) -> None:
    """Write the export files of ``net`` (the static subnet of ``arch``, e.g. fine-tuned) into
    ``folder``; ``config.json`` last, so a folder holding it holds a complete export."""
    net = net.eval().float().cpu()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    write_arch_json(folder, supernet, space, arch, extra)
    if onnx:
        export_onnx(net, (1, *supernet.space.input_shape(arch)), folder / "model.onnx")
    atomic_write_json(folder / "config.json", export_config(supernet, space, arch))


def export_onnx(net: torch.nn.Module, shape: tuple[int, ...], path: Path, dtype: torch.dtype = torch.float32) -> None:
    """ONNX graph with a dynamic batch axis; input ``input`` (of ``dtype``: int64 for token ids), output ``logits``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(shape, dtype=dtype),), str(path), input_names=["input"], output_names=["logits"],
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
    own_loader = hook(entry.build_space(cfg), "load_exported")
    if own_loader is not None:  # a space with its own export format (token sequences may be of any length)
        return own_loader(folder).eval()
    net = entry.build_static(cfg, arch)
    load_weights(net, folder / "model.safetensors")
    shape = meta.get("input_shape") or [1, *entry.build_space(cfg).input_shape(arch)]
    net.register_forward_pre_hook(_shape_check(tuple(shape[1:])))
    return net.eval()


def _shape_check(expected: tuple[int, ...]):
    """A forward pre-hook refusing inputs whose shape (batch axis aside) is not ``expected``, as ONNX does."""
    def check(module, args):
        x = args[0]
        if tuple(x.shape[1:]) != expected:
            raise SupernetError(f"this export takes inputs of shape (batch, {', '.join(map(str, expected))}), got "
                                f"{tuple(x.shape)}; resize inputs to the arch's resolution first (see arch.json)")
    return check
