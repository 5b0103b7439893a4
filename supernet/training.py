"""Supernet training: config, run folder, data and hooks around :class:`supernet.trainer.Trainer`.

Each step: the largest arch on the labels (the space's task loss, e.g. cross-entropy with
label smoothing), then the smallest and ``num_random`` random archs distilled from the
largest's detached outputs (KL by default, or AlphaNet's adaptive alpha-divergence). Gradients
accumulate over the members; one clipped optimizer step; the LR follows linear warm-up
then cosine decay. Hooks log every step, evaluate the largest and smallest arch each
epoch, and checkpoint every ``checkpoint_every`` steps, at the end, and on SIGINT/SIGTERM.
"""
from __future__ import annotations

import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from .checkpoint import (has_checkpoint, load_checkpoint_into, load_trainer_state, remove_stale_temps,
                         resolve_checkpoint, save_checkpoint)
from .data import default_variant, load_data
from .device import Placement
from .errors import SupernetError
from .evaluation import evaluate_arch
from .registry import build_supernet, get_space, space_config
from .runs import RunLog, atomic_write_json, prepare_run_dir, read_json, truncate_log
from .sampling import check_shared
from .task import make_task
from .train_config import ScaleConfig, TrainConfig  # noqa: F401  (re-exported; torch-free for the CLI)
from .trainer import Trainer, lr_factor, make_optimizer  # noqa: F401  (re-exported)


# -- hooks -------------------------------------------------------------------------------
class LogHook:
    """Every step to ``log.jsonl`` and TensorBoard; a progress bar on a terminal, else a line per N steps."""

    def __init__(self, log: RunLog, cfg: TrainConfig, start: int, total: int):
        self.log, self.total, self.start, self.t0 = log, total, start, time.time()
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=start, desc="train", unit="step",
                        disable=not (cfg.progress and tty))
        self.every = max(1, total // 20) if cfg.progress and not tty else 0

    def after_step(self, trainer, done: int, record: dict) -> None:
        self.log.log({"step": done - 1, "time": round(time.time(), 4), **record}, done - 1, record)
        self.bar.update(1)
        self.bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in record.items() if k.startswith("loss/")})
        if self.every and (done % self.every == 0 or done == self.total):
            rate = (done - self.start) / max(1e-9, time.time() - self.t0)
            losses = " ".join(f"{k}={v:.3f}" for k, v in record.items() if k.startswith("loss/"))
            print(f"train step {done}/{self.total} {losses} {rate:.2f} step/s "
                  f"eta {(self.total - done) / max(rate, 1e-9) / 60:.1f} min", file=sys.stderr, flush=True)

    def end(self, trainer, done: int) -> None:
        self.bar.close()

    def interrupted(self, trainer, done: int) -> None:
        self.bar.close()


class EpochEvalHook:
    """Each epoch end and at the end: the task score on validation of the largest and smallest archs."""

    def __init__(self, data, calib, log: RunLog, steps_per_epoch: int, total: int):
        self.data, self.calib, self.log, self.per_epoch, self.total = data, calib, log, steps_per_epoch, total

    def after_step(self, trainer, done: int, record: dict) -> None:
        if done % self.per_epoch and done != self.total:
            return
        space, task = trainer.space, trainer.task
        scalars = {}
        for name, arch in (("largest", space.largest()), ("smallest", space.smallest())):
            result = evaluate_arch(trainer.model, arch, self.calib, self.data, ["val"], task, trainer.placement)
            scalars[f"val_{task.score_name}/{name}"] = result[f"val_{task.score_name}"]
        self.log.log({"step": done, "epoch": done // self.per_epoch, **scalars}, done, scalars)
        trainer.model.train()

    def end(self, trainer, done: int) -> None:
        pass

    def interrupted(self, trainer, done: int) -> None:
        pass


class CheckpointHook:
    """A checkpoint every ``every`` steps, at the end, and at the step an interruption stopped at."""

    def __init__(self, run_dir: Path, meta: dict, every: int, saved: int):
        self.run_dir, self.meta, self.every, self.saved = run_dir, meta, every, saved

    def save(self, trainer, done: int) -> None:
        if done > self.saved:
            save_checkpoint(self.run_dir, done, trainer.model, self.meta, trainer.state_dict())
            self.saved = done

    def after_step(self, trainer, done: int, record: dict) -> None:
        if self.every and done % self.every == 0:
            self.save(trainer, done)

    end = interrupted = save


# -- entry points ------------------------------------------------------------------------
def train(cfg: TrainConfig, out: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          protect: tuple = (), scale: ScaleConfig | None = None) -> Path:
    """Train a supernet; returns the run folder (its latest checkpoint is the result).

    The run folder may not be, contain or sit inside the data (a ``.npz`` or image folder)
    nor any path in ``protect``. ``scale`` runs the same training on Ray Train workers
    (:mod:`supernet.ray_train`); the run folder is the same either way.

    A run that fails before its first checkpoint leaves no folder behind; SIGINT/SIGTERM
    write a checkpoint at the current step and raise a SupernetError naming how to resume.
    """
    cfg.check()
    if scale is not None:
        scale.check(cfg)
    cfg = replace(cfg, data=_data_arg(cfg.data))  # stored absolute: the run works from any folder
    if cfg.model is not None:
        if "model" not in get_space(cfg.space).config_cls.__dataclass_fields__:
            raise SupernetError(f"--model applies to spaces that wrap a pretrained model (llm_lora), not {cfg.space!r}")
        cfg = replace(cfg, model=str(Path(cfg.model).expanduser().resolve()))
    placement = cfg.placement() if scale is None else None
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data_path = cfg.data.removeprefix("imagefolder:").removeprefix("text:")
    protect = (*protect, data_path) if data_path != cfg.data or cfg.data.endswith(".npz") else protect
    protect = (*protect, cfg.model) if cfg.model else protect
    run_dir = prepare_run_dir(out, "train", resume=resume, overwrite=overwrite, protect=protect)
    try:
        if scale is not None:
            from .ray_train import train_on_ray
            return train_on_ray(cfg, scale, run_dir, resume)
        return _train(cfg, placement, run_dir, resume)
    except BaseException:
        if not resume and not has_checkpoint(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


@dataclass
class Setup:
    """Everything a training run builds from its config, the same on every worker."""

    data: object
    model: torch.nn.Module
    task: object
    meta: dict  # what config.json and every checkpoint's config.json record
    per_epoch: int
    total: int


def build_setup(cfg: TrainConfig, placement: Placement) -> Setup:
    """Data, supernet (initialised from ``cfg.seed``), task and run metadata for ``cfg``."""
    data = load_data(cfg.data, samples=cfg.samples, val_fraction=cfg.val_fraction, seed=cfg.seed,
                     workers=cfg.data_workers, pin_memory=placement.device.type == "cuda", model=cfg.model,
                     seq_len=cfg.seq_len, text_field=cfg.text_field)
    entry = get_space(cfg.space)
    variant = cfg.variant or (default_variant(data) if default_variant(data) in entry.variants
                              else entry.default_variant)
    space_cfg = space_config(cfg.space, variant, **_space_overrides(cfg, data, entry))
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg.space, space_cfg)
    space_cfg = model.config  # as built: e.g. with the base model's hash filled in
    _check_fits(model, data, cfg.space, variant)
    check_shared(model.space, cfg.shared)
    image_size = int(model.space.input_shape(model.space.largest())[-1])
    data.set_image_size(image_size)
    per_epoch = data.steps_per_epoch(cfg.batch_size)
    total = cfg.steps or cfg.epochs * per_epoch
    task = make_task(get_space(cfg.space).task, label_smoothing=cfg.label_smoothing, kd=cfg.kd,
                     alpha_min=cfg.alpha_min, alpha_max=cfg.alpha_max, alpha_clamp=cfg.alpha_clamp)
    meta = {"space": cfg.space, "variant": variant, "space_config": space_cfg.to_dict(), "train": asdict(cfg),
            "data": data.describe(), "total_steps": total, "task": task.kind, "image_size": image_size}
    return Setup(data, model, task, meta, per_epoch, total)


def prepare_model(setup: Setup, cfg: TrainConfig, start: int) -> None:
    """Before step 0 of a fresh run: what the space decides from data once (e.g. ``reorder_mlp``, the
    importance order of MLP channels, saved with the first checkpoint; a resumed run loads it)."""
    if start == 0 and hasattr(setup.model, "reorder_mlp"):
        setup.model.reorder_mlp(setup.data.calibration_batches(cfg.calib_batches, 256, cfg.seed))


def run_hooks(run_dir: Path, cfg: TrainConfig, setup: Setup, start: int, checkpoints) -> tuple[RunLog, list]:
    """The log (``log.jsonl`` cut back to ``start``, so a restart logs no step twice) and the hooks that
    log, evaluate each epoch and checkpoint (``checkpoints``, last)."""
    truncate_log(run_dir / "log.jsonl", start)
    log = RunLog(run_dir, cfg.tensorboard, purge_step=start or None)
    calib = setup.data.calibration_batches(cfg.calib_batches, 256, cfg.seed)
    return log, [LogHook(log, cfg, start, setup.total),
                 EpochEvalHook(setup.data, calib, log, setup.per_epoch, setup.total), checkpoints]


def _train(cfg: TrainConfig, placement: Placement, run_dir: Path, resume: bool) -> Path:
    setup = build_setup(cfg, placement)
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
    trainer = Trainer(model, setup.task, cfg, placement, total, hooks)
    if resume:
        trainer.load_state_dict(load_trainer_state(folder, placement.device))
    try:
        with signals_interrupt():
            trainer.fit(setup.data.train_batches(start, cfg.batch_size, cfg.seed), start)
    except KeyboardInterrupt:
        if checkpoints.saved == 0:
            raise SupernetError("interrupted before the first step finished; nothing was saved") from None
        raise SupernetError(f"interrupted: checkpoint saved at step {checkpoints.saved} of {total}; continue with "
                            f"`supernet train --resume --out {run_dir}`") from None
    finally:
        log.close()
    return run_dir


def _space_overrides(cfg: TrainConfig, data, entry) -> dict:
    """Space config fields the data and options decide: classes and channels of labelled data,
    the base model and sequence length of a model-wrapping space (``--model``)."""
    fields = set(entry.config_cls.__dataclass_fields__)
    overrides = {k: getattr(data, k) for k in ("in_channels", "num_classes") if getattr(data, k, None) is not None}
    if cfg.model is not None:
        overrides["model"] = cfg.model
    if "seq_len" in fields:
        overrides["seq_len"] = cfg.seq_len
    return {k: v for k, v in overrides.items() if k in fields}


def _data_arg(name: str) -> str:
    """A user's file or folder path stored absolute, so the run works from any working directory."""
    prefix = next((p for p in ("imagefolder:", "text:") if name.startswith(p)), "")
    path = name[len(prefix):]
    if prefix or path.endswith(".npz"):
        return prefix + str(Path(path).expanduser().resolve())
    return name


def _check_fits(model, data, space: str, variant: str) -> None:
    arch = model.space.largest()
    vocab = getattr(model.config, "vocab_size", None)
    if getattr(data, "max_token", None) is not None and vocab is not None and data.max_token >= vocab:
        raise SupernetError(f"the data's token ids reach {data.max_token} but the model's vocabulary has {vocab} "
                            "entries; tokenise with the model's own tokenizer (--model)")
    ndim = len(model.space.input_shape(arch)) - 1
    if ndim != data.ndim:
        raise SupernetError(f"variant {variant!r} of space {space!r} takes {ndim}-D inputs but the data "
                            f"{data.name!r} is {data.ndim}-D; choose a {data.ndim}-D --variant (see `supernet spaces`)")


@contextmanager
def signals_interrupt():
    """While training runs, SIGINT and SIGTERM raise KeyboardInterrupt (also where SIGINT was
    inherited as ignored, as by a job started with ``&`` from a script)."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def resume_training(run_dir: str | Path, device: str | None = None, scale: ScaleConfig | None = None) -> Path:
    """Continue ``run_dir`` from its latest checkpoint with its own saved config.

    ``device`` moves the run to another device (the default is the saved one); ``scale``
    continues it on Ray workers (None: here, whichever way it started). The result is exact
    only on the device, precision and number of workers the run started with.
    """
    if run_dir is None:
        raise SupernetError("--resume needs --out RUN_FOLDER naming the run to continue")
    meta = read_json(Path(run_dir) / "config.json", "run config")
    cfg = TrainConfig.from_dict(meta["train"])
    if device is not None:
        cfg.device = device
    return train(cfg, run_dir, resume=True, scale=scale)
