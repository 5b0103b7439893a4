"""The frozen teacher a subnet distils from when it trains alone (fine-tuning, stand-alone KD).

``supernet finetune --teacher`` names it: ``largest`` (the default) is the supernet's own largest
subnet; a path is another trained model of the same space, variant and data: a supernet run or
checkpoint folder (its largest subnet) or an export folder (its module as exported). A teacher
``x -> logits`` takes the raw batch, as the student does, prepares it for its own arch (e.g.
resizes to its resolution), and runs in eval mode without gradients.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..core.errors import SupernetError
from ..core.placement import Placement
from ..core.registry import config_to_dict
from ..evaluation.subnet import calibrated_subnet
from ..io.checkpoint import load_checkpoint, resolve_checkpoint
from ..io.export import load_exported
from ..io.files import read_json

LARGEST = "largest"


def largest_teacher(supernet: nn.Module, calib: list[torch.Tensor], placement: Placement) -> Callable:
    """``x -> logits`` of the supernet's largest subnet, BN recalibrated on ``calib``, eval mode, no grad."""
    arch = supernet.space.largest()
    net = calibrated_subnet(supernet, arch, calib, placement)
    return _frozen(net, supernet, arch)


def load_teacher(spec: str, supernet: nn.Module, meta: dict, calib: list[torch.Tensor],
                 placement: Placement) -> Callable:
    """The teacher ``spec`` names for a student of ``supernet`` (its checkpoint's ``meta``).

    ``largest``: the supernet's largest subnet, BN recalibrated on ``calib``. A supernet run or
    checkpoint folder: its largest subnet, recalibrated on the same ``calib``. An export folder
    (``arch.json`` + ``model.safetensors``): its module. A teacher of another space, variant or
    data is refused in one line.
    """
    if spec == LARGEST:
        return largest_teacher(supernet, calib, placement)
    path = Path(spec)
    if (path / "arch.json").exists() and (path / "model.safetensors").exists():
        config = read_json(path / "config.json", "teacher export config")
        _check_same(f"teacher export {spec!r}", config.get("space"), config.get("space_config"),
                    read_json(path / "arch.json", "teacher export arch").get("data"), supernet, meta)
        arch = supernet.space.make(config["arch"])
        return _frozen(placement.model(load_exported(path)), supernet, arch)
    folder = resolve_checkpoint(path)
    other = read_json(folder / "config.json", "teacher checkpoint config")
    _check_same(f"teacher run {spec!r}", other.get("space"), other.get("space_config"), other.get("data"),
                supernet, meta)
    return largest_teacher(placement.model(load_checkpoint(folder)[0]), calib, placement)


def _check_same(where: str, space, space_config, data, supernet: nn.Module, meta: dict) -> None:
    """A SupernetError unless the teacher's space, variant (space config) and data are the student's."""
    if space != meta["space"] or space_config != config_to_dict(supernet.config):
        raise SupernetError(f"{where} is a {space!r} model of another space or variant than the student's "
                            f"{meta['space']!r} supernet; its logits would not match: pass a teacher trained on the "
                            "same space and variant, or --teacher largest")
    if data not in (None, meta.get("data")):
        raise SupernetError(f"{where} was trained on other data than the student's supernet ({data.get('data')!r}, "
                            f"{data.get('train')} training examples); pass a teacher trained on the same data")


def _frozen(net: nn.Module, supernet: nn.Module, arch) -> Callable:
    """``x -> net(supernet.prepare_input(x, arch))`` with ``net`` frozen in eval mode."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)

    @torch.no_grad()
    def teacher(x: torch.Tensor) -> torch.Tensor:
        return net(supernet.prepare_input(x, arch))
    return teacher


def teacher_fit(teacher: Callable, data, device: torch.device, examples: int = 256, batch_size: int = 64) -> dict:
    """How well a fixed teacher knows the task, before every subnet distils from it: its top-1 ``accuracy`` on
    the first ``examples`` of the validation split (of the training split when the validation split is smaller:
    a handful of examples would make the check noise) and ``majority``, the
    most frequent label's share of them (what a classifier that learned nothing about its inputs reaches).
    ``fit`` is False when ``accuracy <= majority + 0.02``: e.g. a pretrained encoder saved with a fresh,
    untrained classification head, from which every subnet would learn nothing."""
    split = "val" if data.split_size("val") >= min(examples, data.split_size("train")) else "train"
    correct, labels, seen = 0, [], 0
    with torch.no_grad():
        for x, y in data.eval_batches(split, batch_size):
            x, y = x[:examples - seen], y[:examples - seen]
            correct += int((teacher(x.to(device)).argmax(-1).cpu() == y).sum())
            labels.append(y)
            seen += len(y)
            if seen >= examples:
                break
    y = torch.cat(labels)
    accuracy, majority = correct / len(y), float(torch.bincount(y).max()) / len(y)
    return {"event": "teacher", "split": split, "examples": len(y), "accuracy": accuracy, "majority": majority,
            "fit": accuracy > majority + 0.02}


def unfit_teacher_warning(check: dict) -> str:
    """The one-line warning for a teacher no better than the majority label (:func:`teacher_fit`)."""
    return (f"warning: the teacher (the model as loaded) is right on {100 * check['accuracy']:.1f} % of "
            f"{check['examples']} {check['split']} examples, no better than always answering the most frequent "
            f"label ({100 * check['majority']:.1f} %): its classifier has not learned these labels, and every subnet "
            "distils from it; fine-tune the model on this data first, or train with --teacher inplace")


def check_teacher(teacher, data, device, log) -> None:
    """Log how well a fixed teacher knows the task (:func:`teacher_fit`) and warn on stderr, in one
    line, when it is no better than the majority label."""
    check = teacher_fit(teacher, data, device)
    log.log(check)
    if not check["fit"]:
        print(unfit_teacher_warning(check), file=sys.stderr, flush=True)
