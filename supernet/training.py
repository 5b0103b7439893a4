"""Supernet training: the sandwich rule with in-place distillation (or uniform SPOS).

Each step: the largest arch on the labels (cross-entropy with label smoothing), then
the smallest and ``num_random`` random archs distilled from the largest's detached
logits (AlphaNet's adaptive alpha-divergence or KL). Gradients accumulate over the
members; one clipped optimizer step; the LR follows linear warm-up then cosine decay.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .arch import Arch
from .checkpoint import load_checkpoint, load_trainer_state, resolve_checkpoint, save_checkpoint
from .data import BatchStream, calibration_batches, load_data
from .errors import SupernetError
from .evaluation import evaluate_arch
from .losses import distillation_loss
from .registry import build_supernet, space_config
from .runs import RunLog, atomic_write_json, prepare_run_dir, read_json
from .sampling import STRATEGIES, step_archs


@dataclass
class TrainConfig:
    data: str = "mnist1d"
    samples: int | None = None
    val_fraction: float = 0.1
    space: str = "mobilenet"
    variant: str | None = None
    epochs: int = 16
    steps: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 3e-5
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    sampling: str = "sandwich"
    num_random: int = 2
    kd: str = "alpha"
    alpha_min: float = -1.0
    alpha_max: float = 1.0
    alpha_clamp: float = 5.0
    grad_clip: float = 5.0
    seed: int = 0
    checkpoint_every: int = 500
    calib_batches: int = 8
    threads: int | None = None
    tensorboard: bool = True
    progress: bool = True

    def check(self) -> None:
        if self.sampling not in STRATEGIES:
            raise SupernetError(f"--sampling must be one of {list(STRATEGIES)}, got {self.sampling!r}")
        if self.kd not in ("alpha", "kl"):
            raise SupernetError(f"--kd must be 'alpha' or 'kl', got {self.kd!r}")
        if self.optimizer not in ("sgd", "adamw"):
            raise SupernetError(f"--optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if not self.alpha_min < 0 < self.alpha_max:
            raise SupernetError("--alpha-min must be < 0 < --alpha-max (AlphaNet uses -1 and 1)")
        if not 0 < self.val_fraction < 1:
            raise SupernetError(f"--val-fraction must be between 0 and 1 (exclusive), got {self.val_fraction}")
        for name in ("epochs", "batch_size", "lr"):
            if getattr(self, name) <= 0:
                raise SupernetError(f"--{name.replace('_', '-')} must be positive")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """No weight decay on biases and normalisation weights (1-D parameters)."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then ``0.5 (1 + cos(pi t))``, t in [0, 1]."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def train_step(model, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, archs: list[Arch], step: int) -> dict:
    """Forward/backward every member of the step; gradients accumulate. Returns the losses."""
    record, teacher = {}, None
    for i, arch in enumerate(archs):
        logits = model(model.prepare_input(x, arch), arch)
        role = ("largest", "smallest")[i] if cfg.sampling == "sandwich" and i < 2 else f"random{i - 1}"
        if teacher is None:
            role = role if cfg.sampling == "sandwich" else "uniform"
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            teacher = logits.detach()
        else:
            loss, divergence = distillation_loss(cfg.kd, logits, teacher, cfg.alpha_min, cfg.alpha_max,
                                                 cfg.alpha_clamp)
        value = loss.item() if i == 0 else divergence.item()  # the surrogate's value means nothing; log D
        if not math.isfinite(value) or not torch.isfinite(loss):
            raise SupernetError(f"loss is not finite at step {step} for arch {arch.to_json()}; "
                                "lower --lr or set --grad-clip")
        loss.backward()
        record[f"loss/{role}"] = value
    students = [v for k, v in record.items() if k != "loss/largest"]
    if cfg.sampling == "sandwich" and students:
        record["kd/mean_divergence"] = sum(students) / len(students)
    return record


def train(cfg: TrainConfig, out: str | Path | None = None, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a supernet; returns the run folder (its latest checkpoint is the result)."""
    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = prepare_run_dir(out, "train", resume=resume, overwrite=overwrite)
    data = load_data(cfg.data, samples=cfg.samples, val_fraction=cfg.val_fraction, seed=cfg.seed)
    variant = cfg.variant or data.default_variant
    space_cfg = space_config(cfg.space, variant, in_channels=data.in_channels, num_classes=data.num_classes)
    torch.manual_seed(cfg.seed)
    model = build_supernet(cfg.space, space_cfg)
    stream = BatchStream(data.train, cfg.batch_size, cfg.seed)
    total = cfg.steps or cfg.epochs * stream.steps_per_epoch
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, total))
    meta = {"space": cfg.space, "variant": variant, "space_config": space_cfg.to_dict(), "train": asdict(cfg),
            "data": data.describe(), "total_steps": total}
    start = _resume(run_dir, model, opt, sched) if resume else 0
    if not resume:
        atomic_write_json(run_dir / "config.json", meta)
    calib = calibration_batches(data.train, 256, cfg.calib_batches, cfg.seed)
    log = RunLog(run_dir, cfg.tensorboard)
    try:
        _loop(model, cfg, stream, opt, sched, start, total, run_dir, meta, log, data, calib)
    finally:
        log.close()
    return run_dir


def resume_training(run_dir: str | Path) -> Path:
    """Continue ``run_dir`` from its latest checkpoint with its own saved config."""
    if run_dir is None:
        raise SupernetError("--resume needs --out RUN_FOLDER naming the run to continue")
    meta = read_json(Path(run_dir) / "config.json", "run config")
    return train(TrainConfig.from_dict(meta["train"]), run_dir, resume=True)


def _loop(model, cfg, stream, opt, sched, start, total, run_dir, meta, log, data, calib) -> None:
    bar = tqdm(total=total, initial=start, desc="train", disable=not cfg.progress or None, unit="step")
    model.train()
    for step in range(start, total):
        x, y = stream.batch(step)
        archs = step_archs(model.space, cfg.sampling, cfg.num_random, cfg.seed, step)
        opt.zero_grad(set_to_none=True)
        record = train_step(model, cfg, x, y, archs, step)
        if cfg.grad_clip > 0:
            record["grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
        record["lr"] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        log.log({"step": step, **record}, step, record)
        bar.update(1)
        bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in record.items() if k.startswith("loss/")})
        done = step + 1
        if done % stream.steps_per_epoch == 0 or done == total:
            _epoch_eval(model, cfg, data, calib, done, log)
            model.train()
        if done == total or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0):
            save_checkpoint(run_dir, done, model, meta, _trainer_state(opt, sched))
    bar.close()


def _epoch_eval(model, cfg, data, calib, step, log) -> None:
    """Validation accuracy of the largest and smallest archs (BN recalibrated)."""
    scalars = {}
    for name, arch in (("largest", model.space.largest()), ("smallest", model.space.smallest())):
        scalars[f"val_accuracy/{name}"] = evaluate_arch(model, arch, calib, {"val": data.val})["val_accuracy"]
    log.log({"step": step, "epoch": step // max(1, len(data.train) // cfg.batch_size), **scalars}, step, scalars)


def _trainer_state(opt, sched) -> dict:
    return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state()}


def _resume(run_dir: Path, model, opt, sched) -> int:
    folder = resolve_checkpoint(run_dir)
    loaded, meta = load_checkpoint(folder)
    model.load_state_dict(loaded.state_dict())
    state = load_trainer_state(folder)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(meta["step"])
