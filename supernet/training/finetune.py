"""Train one static subnet: stand-alone from scratch, or fine-tuned after extraction (OFA).

:func:`train_subnet` runs the supernet's :class:`~supernet.training.trainer.Trainer` on one static
subnet (``plan`` = that arch every step), on the labels or distilling from a frozen
``teacher``. :func:`finetune` (``supernet finetune``) fine-tunes an exported subnet for K
steps, distilled with ``--kd`` (KL or alpha-divergence) from a frozen teacher (the supernet's
largest subnet, BN recalibrated, or ``--teacher``: :mod:`supernet.training.teacher`) or on the
labels alone (``--kd none``), then writes a new export.

A fine-tuning run folder is also the new export folder::

    finetune.json        source export, checkpoint, options (resolved)
    log.jsonl            one line per step
    checkpoints/step-*/  subnet weights + trainer state (resume)
    model.safetensors  arch.json  model.onnx  config.json   the export (config.json last)
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..core.arch import Arch
from ..core.contract import hook
from ..core.errors import SupernetError
from ..core.placement import Placement
from ..core.registry import config_to_dict
from ..core.signals import interruptible
from ..core.task import task_of_run
from ..evaluation.recalibrated import checkpoint_data
from ..io.checkpoint import (
    load_checkpoint,
    load_checkpoint_into,
    load_trainer_state,
    remove_stale_temps,
    resolve_checkpoint,
    run_of,
)
from ..io.export import load_exported, write_export
from ..io.files import atomic_dir, atomic_write_json, read_json
from ..io.runs import RunLog, check_apart, prepare_run_dir, release_run_dir, truncate_log
from ..layers.calibration import calibrate_bn
from .train_config import FinetuneConfig, TrainConfig
from .hooks import CheckpointHook, LogHook
from .teacher import LARGEST, load_teacher
from .trainer import Trainer


class SubnetModule(nn.Module):
    """A static subnet seen through the supernet's interface: ``forward(x, arch)`` ignores
    ``arch``; ``prepare_input(x, arch)`` is the supernet's (e.g. resizing to the arch's resolution)."""

    def __init__(self, net: nn.Module, prepare: Callable[[torch.Tensor, Arch], torch.Tensor]):
        super().__init__()
        self.net, self._prepare = net, prepare

    def prepare_input(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self._prepare(x, arch)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        return self.net(x)


def train_subnet(net: nn.Module, arch: Arch, supernet: nn.Module, task, cfg, placement: Placement, batches,
                 total: int, *, start: int = 0, teacher: Callable | None = None, hooks=()) -> Trainer:
    """Steps ``start .. total - 1`` of ``cfg``'s recipe (optimizer, LR schedule, clipping) on the
    static subnet ``net`` of ``arch``: cross-entropy on the labels, or the task's divergence
    from ``teacher(x)``. Returns the trainer (its ``model.net`` is ``net``, on the device)."""
    model = SubnetModule(net, supernet.prepare_input)
    trainer = Trainer(model, task, cfg, placement, total, hooks, plan=lambda step: [arch], teacher=teacher)
    trainer.fit(batches, start)
    return trainer


# -- supernet finetune ----------------------------------------------------------------------
def saved_finetune(out: str | os.PathLike) -> tuple[str, str, FinetuneConfig]:
    """``(export, checkpoint, config)`` of the fine-tuning run in ``out`` (what ``--resume`` continues)."""
    saved = read_json(Path(out) / "finetune.json", "finetune config")
    return saved["export"], saved["checkpoint"], FinetuneConfig.from_dict(saved["config"])


def finetune(export: str | os.PathLike | None, out: str | os.PathLike, *, placement: Placement, checkpoint=None,
             config: FinetuneConfig | None = None, resume: bool = False, overwrite: bool = False,
             onnx: bool = True, make_export: Callable[[Path], Path] | None = None, sources=()) -> Path:
    """Fine-tune the subnet of ``export``: ``config.kd`` from ``config.teacher`` (default: KL from
    its supernet's largest subnet), or on the labels (``kd="none"``).

    ``make_export(folder)`` writes the export to fine-tune into ``folder`` (``out/source``) when
    ``export`` is None (the front door's ``--from-search``: the arch a search picked); ``sources``
    are further inputs ``out`` must stay apart from. ``checkpoint`` defaults to the one the
    export names. An export that does not match the supernet (space, config, data, weights) is
    refused. ``out`` is a run folder that ends up an export folder (:func:`load_exported`
    reads it); ``resume=True`` continues ``out`` from its latest checkpoint with its saved options.
    """
    if resume:
        export, checkpoint, config = saved_finetune(out)
        make_export = None
    config = config or FinetuneConfig()
    config.check()
    if export is None and make_export is None:
        raise SupernetError("finetune needs EXPORT (a folder written by `supernet export`) or --from-search RUN")
    inputs = [export, *sources] + ([run_of(checkpoint)] if checkpoint else [])
    inputs += [config.teacher] if config.teacher != LARGEST else []
    check_apart(out, [p for p in inputs if p is not None and Path(p).resolve() != Path(out).resolve() / "source"])
    run_dir = prepare_run_dir(out, "finetune", resume=resume, overwrite=overwrite)
    try:
        if export is None:
            export = make_export(run_dir / "source")
        return _finetune(export, run_dir, checkpoint, config, placement, resume, onnx)
    except BaseException:
        if not resume and not (run_dir / "checkpoints").is_dir():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        release_run_dir(run_dir)


def _finetune(export, run_dir: Path, checkpoint, config: FinetuneConfig, placement: Placement, resume: bool,
              onnx: bool) -> Path:
    export = Path(export).resolve()
    source = read_json(export / "arch.json", "export arch")
    checkpoint = checkpoint or source.get("checkpoint")
    if checkpoint is None:
        raise SupernetError(f"{str(export)!r} does not name its supernet checkpoint; pass --checkpoint RUN")
    checkpoint = resolve_checkpoint(checkpoint).resolve()
    check_apart(run_dir, [run_of(checkpoint)])
    supernet, meta = load_checkpoint(checkpoint)
    net, arch = matching_subnet(export, source, supernet, meta, checkpoint)
    if config.data is None and source.get("calibration_data"):  # the --data the export was recalibrated on
        config = replace(config, data=source["calibration_data"])
    record = {"export": str(export), "checkpoint": str(checkpoint), "config": asdict(config), "arch": arch.to_dict()}
    if not resume:
        atomic_write_json(run_dir / "finetune.json", record)
    trainer, data = _finetune_steps(run_dir, net, arch, supernet, meta, config, placement, resume)
    calib = data.calibration_batches(config.calib_batches, 256, meta["train"]["seed"])
    tuned = trainer.model.net
    calibrate_bn(tuned, lambda x: tuned(supernet.prepare_input(trainer.placement.input(x), arch)), calib)
    extra = {"data": meta.get("data"), "checkpoint": str(checkpoint), "finetuned": record,
             **({"calibration_data": config.data} if config.data else {}),
             **{k: source[k] for k in ("picked",) if k in source}}
    with atomic_dir(run_dir / "export") as tmp:  # staged whole, then moved up file by file, config.json last
        write_export(tmp, tuned, supernet, meta["space"], arch, onnx=onnx, extra=extra)
    for name in ("model.safetensors", "arch.json", "model.onnx", "config.json"):
        if (run_dir / "export" / name).exists():
            os.replace(run_dir / "export" / name, run_dir / name)
    (run_dir / "export").rmdir()
    return run_dir


def _finetune_steps(run_dir: Path, net: nn.Module, arch: Arch, supernet, meta: dict, config: FinetuneConfig,
                    placement: Placement, resume: bool):
    """Run (or continue) the fine-tuning steps with checkpoints; ``(trainer, data)``."""
    recipe = TrainConfig.from_dict(meta["train"])
    cfg = replace(recipe, lr=config.lr, warmup_steps=config.warmup_steps, seed=config.seed,
                  batch_size=config.batch_size or recipe.batch_size, steps=config.steps)
    data, calib = checkpoint_data(meta, config.calib_batches, config.data)
    model, start, folder = SubnetModule(net, supernet.prepare_input), 0, None
    if resume:
        remove_stale_temps(run_dir)
        if any((run_dir / "checkpoints").glob("step-*")):
            folder = resolve_checkpoint(run_dir)
            start = load_checkpoint_into(model, folder)
    truncate_log(run_dir / "log.jsonl", start)  # a resumed run logs no step twice
    log = RunLog(run_dir, tensorboard=False)
    checkpoints = CheckpointHook(run_dir, {"finetune": True}, config.checkpoint_every, saved=start)
    torch.manual_seed(config.seed)  # dropout and every other draw of torch's generator (a resume restores it)
    task = task_of_run(meta, kd=config.kd)  # None: the supernet's (a run saved before --kd)
    teacher = None if task.kd == "none" else load_teacher(config.teacher, placement.model(supernet), meta, calib,
                                                          placement)
    trainer = Trainer(model, task, cfg, placement, config.steps,
                      [LogHook(log, cfg, start, config.steps), checkpoints], plan=lambda step: [arch], teacher=teacher)
    if folder is not None:
        trainer.load_state_dict(load_trainer_state(folder, placement.device))
    try:
        with interruptible():
            trainer.fit(data.train_batches(start, cfg.batch_size, cfg.seed), start)
    except KeyboardInterrupt:
        raise SupernetError(f"interrupted: checkpoint saved at step {checkpoints.saved} of {config.steps}; continue "
                            f"with `supernet finetune --resume --out {run_dir}`") from None
    finally:
        log.close()
    return trainer, data


def matching_subnet(export: Path, source: dict, supernet: nn.Module, meta: dict, checkpoint: Path):
    """The export's static module and arch, if it is a subnet of this supernet; else a SupernetError."""
    config = read_json(export / "config.json", "export config")
    if hook(supernet, "export_files") is not None:
        raise SupernetError(f"finetune needs a static PyTorch export; space {meta['space']!r} exports its own format "
                            "which finetune does not support yet")
    where = f"export {str(export)!r} does not match the supernet {str(checkpoint)!r}"
    if config.get("space") != meta["space"] or config.get("space_config") != config_to_dict(supernet.config):
        raise SupernetError(f"{where}: it is a {config.get('space')!r} subnet of another space or variant; "
                            "pass the --checkpoint it was exported from")
    if source.get("data") not in (None, meta.get("data")):
        raise SupernetError(f"{where}: it was trained on other data ({source['data'].get('data')!r}, "
                            f"{source['data'].get('train')} training examples); pass the matching --checkpoint")
    try:
        arch = supernet.space.make(config["arch"])
    except (KeyError, ValueError) as exc:
        raise SupernetError(f"{where}: its arch is not one of this space ({exc})") from None
    return load_exported(export).train(), arch
