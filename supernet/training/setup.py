"""What a training run builds from its config, the same on every worker: data, supernet, task, metadata.

The space decides everything space-specific through the registry and its hooks: its own
options (``space_options``), the variant for the data, how the data fits its config (classes,
channels, sequence length, base model), the side image data is decoded to, and what it
computes once before step 0. A one-batch trial forward then checks that the data fits the
supernet, so a mismatch is one clear line instead of a traceback at step 0.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..core.contract import hook
from ..core.errors import SupernetError
from ..core.placement import Placement
from ..core.registry import build_supernet, config_from_dict, config_to_dict, get_space, space_config
from ..core.task import make_task
from ..data.load import data_path, load_data
from ..io.files import read_json
from ..io.runs import RunLog, truncate_log
from .train_config import TrainConfig, with_space_defaults
from .hooks import EpochEvalHook, LogHook
from .init import InitSource, init_message, load_init
from .sampling import check_shared
from .teacher import check_teacher


@dataclass
class Setup:
    """Everything a training run builds from its config, the same on every worker."""

    data: object
    model: torch.nn.Module
    task: object
    meta: dict  # what config.json and every checkpoint's config.json record
    per_epoch: int
    total: int


def resolved_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` checked (engine options, then the space's own), with the space's training defaults filled in
    (:func:`~supernet.training.train_config.with_space_defaults`: where the space is resolved) and every
    input path absolute, so the run works from any folder; nothing is written before this passes."""
    cfg.check()
    entry = get_space(cfg.space)
    options = entry.make_options(cfg.space_options)
    path = data_path(cfg.data)
    data = cfg.data if path is None else cfg.data[:len(cfg.data) - len(path)] + str(Path(path).expanduser().resolve())
    init = None if cfg.init is None else str(InitSource.read(cfg.init, cfg.space, cfg.variant).folder)
    return replace(with_space_defaults(cfg, entry.train_defaults), data=data,
                   space_options=options.to_dict() if options is not None else {}, init=init)


def input_paths(cfg: TrainConfig) -> list[str]:
    """Files and folders a run reads: its data, and paths among its space options (e.g. a base model)."""
    options = get_space(cfg.space).make_options(cfg.space_options)
    return [p for p in [data_path(cfg.data), *(options.input_paths() if options else []), cfg.init] if p]


def build_setup(cfg: TrainConfig, placement: Placement, recorded: dict | None = None) -> Setup:
    """Data, supernet (initialised from ``cfg.seed``), task and run metadata for ``cfg``. ``recorded``: the
    space config a resumed run saved; the supernet is built from it (e.g. with its base model's identity
    hash, checked again), after refusing data or options that would fit another config."""
    entry = get_space(cfg.space)
    cfg = with_space_defaults(cfg, entry.train_defaults)
    options = entry.make_options(cfg.space_options)
    data = load_data(cfg.data, samples=cfg.samples, val_fraction=cfg.val_fraction, seed=cfg.seed,
                     workers=cfg.data_workers, pin_memory=placement.device.type == "cuda",
                     reader=options.reader_options() if options is not None else {}, device=placement.device,
                     decoder=cfg.decoder)
    info = data.info()
    if entry.task == "classification" and info.num_classes is not None and info.num_classes < 2:
        raise SupernetError(f"the data {info.name!r} has {info.num_classes} class; a classifier needs at least 2 "
                            "(an image folder holds one subfolder per class under train/)")
    source = None if cfg.init is None else InitSource.read(cfg.init, cfg.space, cfg.variant)
    variant = source.variant if source else cfg.variant or entry.variant_for(info)
    space_cfg = entry.fitted(source.config() if source else space_config(cfg.space, variant), info, options)
    if recorded is not None:
        space_cfg = resumed_config(cfg.space, space_cfg, recorded)
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg.space, space_cfg)
    space_cfg = model.config  # as built: e.g. with the base model's hash filled in
    image_size = hook(model.space, "input_size")()
    if image_size:
        data.set_image_size(image_size)
    check_fits(model, data, info, cfg.space, variant)
    check_shared(model.space, cfg.shared)
    per_epoch = data.steps_per_epoch(cfg.batch_size)
    total = cfg.steps or cfg.epochs * per_epoch
    task = make_task(entry.task, label_smoothing=cfg.label_smoothing, kd=cfg.kd, alpha_min=cfg.alpha_min,
                     alpha_max=cfg.alpha_max, alpha_clamp=cfg.alpha_clamp)
    meta = {"space": cfg.space, "variant": variant, "space_config": config_to_dict(space_cfg), "train": asdict(cfg),
            "data": data.describe(), "total_steps": total, "task": task.kind, "image_size": image_size}
    if source is not None:  # checked now, loaded before step 0 (prepare_model)
        meta["init"] = source.plan(model, info.num_classes if entry.task == "classification" else None)
    return Setup(data, model, task, meta, per_epoch, total)


def saved_space_config(run_dir: Path) -> dict:
    """The space config a run folder recorded when it started (its ``config.json``)."""
    return read_json(Path(run_dir) / "config.json", "run config")["space_config"]


def resumed_config(space: str, fitted, recorded: dict):
    """The space config a run saved, refused when the config fitted again now differs in a field it sets."""
    now = config_to_dict(fitted)
    changed = sorted(k for k, v in now.items() if v is not None and recorded.get(k) != v)
    if changed:
        raise SupernetError(f"cannot resume: the space config differs from the run's in {changed} (its data or "
                            "base model changed); restore them, or start a new run")
    return config_from_dict(space, recorded)


def check_fits(model: torch.nn.Module, data, info, space: str, variant: str) -> None:
    """A no-grad forward of the smallest arch on two training inputs: ``prepare_input`` gives the subnet's
    input shape and the outputs cover the data's classes; else one line naming the data and the variant."""
    arch = model.space.smallest()
    batch = data.calibration_batches(1, 2, 0)[0]
    want = (len(batch), *model.space.input_shape(arch))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = model.prepare_input(batch, arch)
            if tuple(x.shape) != want:
                raise ValueError(f"prepare_input gives {tuple(x.shape)}, the subnet takes {want}")
            out = model(x, arch)
    except SupernetError:
        raise
    except Exception as exc:  # noqa: BLE001  (whatever the space raised, reported in one line)
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SupernetError(f"the data {info.name!r} (one input of shape {tuple(info.sample_shape)}) does not fit "
                            f"variant {variant!r} of space {space!r} ({type(exc).__name__}: {why}); choose a --variant "
                            "that takes such inputs (see `supernet spaces`)") from None
    finally:
        model.train(was_training)
    if info.num_classes is not None and out.shape[-1] < info.num_classes:
        raise SupernetError(f"the data {info.name!r} has {info.num_classes} classes but variant {variant!r} of space "
                            f"{space!r} outputs {out.shape[-1]}; its fit_data must set the number of classes")


def prepare_model(setup: Setup, cfg: TrainConfig, start: int) -> None:
    """Before step 0 of a fresh run: the ``--init`` weights (:mod:`.init`), else what the space computes from
    data once (its ``before_training`` hook, e.g. the importance order of MLP channels, saved with the first
    checkpoint; a resumed run loads it)."""
    if start == 0 and "init" in setup.meta:
        load_init(setup.model, setup.meta["init"])
    elif start == 0:
        hook(setup.model, "before_training")(setup.data.calibration_batches(cfg.calib_batches, 256, cfg.seed))


def fixed_teacher(setup: Setup, start: int, device: torch.device, log: RunLog | None):
    """The space's fixed teacher (its ``teacher`` hook; None for in-place distillation); on a fresh run it is
    checked against the labels first (:func:`.teacher.check_teacher`) where ``log`` is given (rank 0)."""
    teacher = hook(setup.model, "teacher")()
    if start == 0 and log is not None and teacher is not None:
        check_teacher(teacher, setup.data, device, log)
    return teacher


def run_hooks(run_dir: Path, cfg: TrainConfig, setup: Setup, start: int, checkpoints,
              quiet: bool = False) -> tuple[RunLog, list]:
    """The log (``log.jsonl`` cut back to ``start``, so a restart logs no step twice) and the hooks that
    log (with progress on stderr unless ``quiet``), evaluate each epoch and checkpoint (``checkpoints``, last)."""
    truncate_log(run_dir / "log.jsonl", start)
    log = RunLog(run_dir, cfg.tensorboard, purge_step=start or None)
    if start == 0 and "init" in setup.meta:
        log.log({"event": "init", **setup.meta["init"]})
        if not quiet:
            print(init_message(setup.meta["init"]), file=sys.stderr, flush=True)
    calib = setup.data.calibration_batches(cfg.calib_batches, 256, cfg.seed)
    return log, [LogHook(log, cfg, start, setup.total, quiet),
                 EpochEvalHook(setup.data, calib, log, setup.per_epoch, setup.total), checkpoints]
