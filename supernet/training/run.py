"""A training run on this machine: the run folder, resume, SIGINT/SIGTERM, around the trainer.

Each step: the largest arch on the labels (the space's task loss, e.g. cross-entropy with
label smoothing), then the smallest and ``num_random`` random archs distilled from the
largest's detached outputs (KL by default, or AlphaNet's adaptive alpha-divergence). Gradients
accumulate over the members; one clipped optimizer step; the LR follows linear warm-up
then cosine decay. Hooks log every step, evaluate the largest and smallest arch each
epoch, and checkpoint every ``checkpoint_every`` steps, at the end, and on SIGINT/SIGTERM.
The front door (:func:`supernet.train`) chooses between this and Ray Train workers.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import SupernetError
from ..core.placement import Placement
from ..core.signals import interruptible
from ..io.checkpoint import (
    has_checkpoint,
    load_checkpoint_into,
    load_trainer_state,
    remove_stale_temps,
    resolve_checkpoint,
)
from ..io.files import atomic_write_json
from ..io.runs import prepare_run_dir
from .train_config import TrainConfig
from .hooks import CheckpointHook
from .setup import build_setup, fixed_teacher, input_paths, prepare_model, run_hooks, saved_space_config
from .trainer import Trainer


def run_folder(cfg: TrainConfig, out: str | Path | None, resume: bool, overwrite: bool, protect=()) -> Path:
    """The run folder of ``cfg`` (created; apart from everything the run reads)."""
    return prepare_run_dir(out, "train", resume=resume, overwrite=overwrite, protect=(*protect, *input_paths(cfg)))


@contextmanager
def removed_on_failure(run_dir: Path, resume: bool):
    """A fresh run that fails before its first checkpoint leaves no folder behind."""
    try:
        yield
    except BaseException:
        if not resume and not has_checkpoint(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def train_here(cfg: TrainConfig, placement: Placement, run_dir: Path, resume: bool) -> Path:
    """Train (or continue) ``cfg`` in ``run_dir`` on ``placement``; SIGINT / SIGTERM save a checkpoint
    and raise a SupernetError naming how to resume."""
    setup = build_setup(cfg, placement, recorded=saved_space_config(run_dir) if resume else None)
    model, meta, total = setup.model, setup.meta, setup.total
    start = 0
    if resume:
        remove_stale_temps(run_dir)
        folder = resolve_checkpoint(run_dir)
        start = load_checkpoint_into(model, folder)
    else:
        atomic_write_json(run_dir / "config.json", meta)
    prepare_model(setup, cfg, start)
    checkpoints = CheckpointHook(run_dir, meta, cfg.checkpoint_every, saved=start)
    log, hooks = run_hooks(run_dir, cfg, setup, start, checkpoints)
    trainer = Trainer(model, setup.task, cfg, placement, total, hooks,
                      teacher=fixed_teacher(setup, start, placement.device, log))
    if resume:
        trainer.load_state_dict(load_trainer_state(folder, placement.device))
    try:
        with interruptible():
            trainer.fit(setup.data.train_batches(start, cfg.batch_size, cfg.seed), start)
    except KeyboardInterrupt:
        if checkpoints.saved == 0:
            raise SupernetError("interrupted before the first step finished; nothing was saved") from None
        raise SupernetError(f"interrupted: checkpoint saved at step {checkpoints.saved} of {total}; continue with "
                            f"`supernet train --resume --out {run_dir}`") from None
    finally:
        log.close()
    return run_dir
