"""The training hooks: the log (file, TensorBoard, progress), the epoch evaluation and checkpoints.

A hook has ``after_step(trainer, done, record)``, ``end(trainer, done)`` and
``interrupted(trainer, done)`` (:class:`supernet.training.trainer.Hook`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..evaluation.subnet import evaluate_arch
from ..io.checkpoint import save_checkpoint
from ..io.runs import RunLog
from .train_config import TrainConfig


class Progress:
    """Training progress on stderr: a bar on a terminal, else one line per 5 % of the steps (none without
    ``progress``). ``update(done, record)`` after step ``done - 1``."""

    def __init__(self, progress: bool, start: int, total: int):
        self.total, self.start, self.t0, self.done = total, start, time.time(), start
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=start, desc="train", unit="step", disable=not (progress and tty))
        self.every = max(1, total // 20) if progress and not tty else 0

    def update(self, done: int, record: dict) -> None:
        self.bar.update(done - self.done)
        self.done = done
        self.bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in record.items() if k.startswith("loss/")})
        if self.every and (done % self.every == 0 or done == self.total):
            rate = (done - self.start) / max(1e-9, time.time() - self.t0)
            losses = " ".join(f"{k}={v:.3f}" for k, v in record.items() if k.startswith("loss/"))
            print(f"train step {done}/{self.total} {losses} {rate:.2f} step/s "
                  f"eta {(self.total - done) / max(rate, 1e-9) / 60:.1f} min", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


class LogHook:
    """Every step to ``log.jsonl`` and TensorBoard, and the progress (:class:`Progress`, unless ``quiet``:
    a Ray worker's driver follows the log instead)."""

    def __init__(self, log: RunLog, cfg: TrainConfig, start: int, total: int, quiet: bool = False):
        self.log = log
        self.progress = Progress(cfg.progress and not quiet, start, total)

    def after_step(self, trainer, done: int, record: dict) -> None:
        self.log.log({"step": done - 1, "time": round(time.time(), 4), **record}, done - 1, record)
        self.progress.update(done, record)

    def end(self, trainer, done: int) -> None:
        self.progress.close()

    def interrupted(self, trainer, done: int) -> None:
        self.progress.close()


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
    """A checkpoint every ``every`` steps, at the end, and at the step an interruption stopped at.

    :meth:`write` saves one; a subclass changes how (Ray Train's, in :mod:`supernet.distributed.train`).
    """

    def __init__(self, run_dir: Path, meta: dict, every: int, saved: int):
        self.run_dir, self.meta, self.every, self.saved = run_dir, meta, every, saved

    def write(self, trainer, done: int) -> None:
        save_checkpoint(self.run_dir, done, trainer.model, self.meta, trainer.state_dict())

    def save(self, trainer, done: int) -> None:
        if done > self.saved:
            self.write(trainer, done)
            self.saved = done

    def after_step(self, trainer, done: int, record: dict) -> None:
        if self.every and done % self.every == 0:
            self.save(trainer, done)

    def end(self, trainer, done: int) -> None:
        self.save(trainer, done)

    def interrupted(self, trainer, done: int) -> None:
        self.save(trainer, done)
