"""Distributed training: the same :class:`~supernet.training.trainer.Trainer` on N Ray Train workers (DDP).

Ray Train's ``TorchTrainer`` starts ``workers`` processes and joins them in one
``torch.distributed`` group (gloo on CPUs, NCCL on GPUs). Every worker builds the same run
(data, supernet from ``seed``, task) and wraps the trainer's ``net`` in DDP:

- **Data**: the global batch is ``--batch-size``; rank ``r`` of ``W`` reads rows
  ``[r B/W, (r+1) B/W)`` of global batch ``k`` (a pure function of ``(seed, k)``), so the
  averaged gradient is the gradient of the global batch.
- **Archs**: every rank draws the step's archs from ``(seed, step)``: no communication.
- **Sandwich under DDP**: every pass but the last runs in ``no_sync`` (gradients accumulate
  locally); the last pass all-reduces the accumulated sum once. ``find_unused_parameters``
  is on because the last subnet does not touch every weight: DDP then counts a weight used
  in any pass of the step as used, so the weights only the earlier (larger) subnets touched
  are averaged too. Logged losses are averaged over ranks (one small all-reduce per step).
- **BatchNorm**: each rank normalises with its shard's batch statistics (no SyncBatchNorm,
  which would add a collective to every BN layer of every pass); running statistics are not
  synchronised (``forward_sync_buffers=False``) and rank 0's are saved. They do not matter:
  every evaluation (epoch eval, ``eval``, ``search``) recalibrates BN for its subnet.
- **Checkpoints**: every rank checks that all ranks hold bit-identical weights (SHA-256 of
  the parameters, recorded in the checkpoint's ``config.json`` under ``ray``), then rank 0
  writes the usual checkpoint folder and reports it to ``ray.train.report``; its upload
  function renames it into ``RUN/checkpoints/step-N`` (Ray's storage is the run folder), so
  the run folder is exactly a local run's and ``--resume``, ``eval``, ``search`` and
  ``export`` work on it unchanged. Rank 0 also writes ``log.jsonl`` and TensorBoard.
- **Failures**: when a worker dies, Ray restarts every worker (at most ``max_failures``
  times); they load Ray's latest checkpoint, rank 0 cuts ``log.jsonl`` back to its step, and
  the steps after it are run again: none lost, none logged twice. Each (re)start adds one
  step-less line ``{"event": "workers-started", "from_step": N, ...}`` to ``log.jsonl``.

The run folder must be reachable at the same path from every node (a shared filesystem) when
the workers span several machines; on one machine nothing more is needed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.errors import SupernetError
from ..core.placement import CPU, Placement
from ..core.signals import interruptible
from ..io.checkpoint import (
    has_checkpoint,
    load_checkpoint_into,
    load_trainer_state,
    prune_checkpoints,
    remove_stale_temps,
    resolve_checkpoint,
    write_checkpoint,
)
from ..io.files import atomic_write_json, make_temp_dir, normal_modes
from ..training.train_config import ScaleConfig, TrainConfig
from ..training.hooks import CheckpointHook, Progress
from ..training.setup import build_setup, fixed_teacher, prepare_model, run_hooks, saved_space_config
from ..training.trainer import Trainer
from .cluster import check_capacity, ray_session

SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's own record, beside the step-* folders


def train_on_ray(cfg: TrainConfig, scale: ScaleConfig, placement: Placement, run_dir: Path, resume: bool) -> Path:
    """Train ``cfg`` on ``scale.workers`` Ray Train workers into ``run_dir`` (prepared by the caller); each
    worker computes on ``placement`` (:meth:`~supernet.core.placement.Placement.for_workers`), bound to its GPU,
    with its ``cpu_threads`` torch threads and as many Ray CPUs."""
    recorded = saved_space_config(run_dir) if resume else None
    setup = build_setup(cfg, CPU, recorded)  # user errors surface here, before Ray starts
    meta = {**setup.meta, "ray": asdict(scale)}
    if resume:
        remove_stale_temps(run_dir)
        resolve_checkpoint(run_dir)  # a run folder without a checkpoint: one clear error, before Ray starts
        (run_dir / "checkpoints" / SNAPSHOT).unlink(missing_ok=True)  # the step-* folders are the truth
    else:
        atomic_write_json(run_dir / "config.json", meta)
    threads = placement.cpu_threads or 1
    with ray_session(scale.address, cpus=scale.workers * threads) as ray:
        check_capacity(ray, f"--workers {scale.workers} ({threads} CPU and {scale.gpus_per_worker:g} GPU each)",
                       scale.workers * threads, scale.workers * scale.gpus_per_worker)
        with _followed(run_dir, cfg, setup.total):
            try:
                _fit(cfg, scale, placement, run_dir, meta)
            except KeyboardInterrupt:
                raise SupernetError(_interrupted(run_dir, setup.total, scale.workers)) from None
    return run_dir


def _interrupted(run_dir: Path, total: int, workers: int) -> str:
    saved = f"the latest checkpoint is {resolve_checkpoint(run_dir).name}" if has_checkpoint(run_dir) else \
        "no checkpoint was saved"
    return (f"interrupted: {saved} of {total} steps in {run_dir}; continue with "
            f"`supernet train --resume --out {run_dir} --workers {workers}`")


@contextmanager
def _followed(run_dir: Path, cfg: TrainConfig, total: int):
    """The driver's progress, read from ``log.jsonl`` (rank 0 writes it; the workers print nothing here)."""
    stop, log = threading.Event(), run_dir / "log.jsonl"
    progress = Progress(cfg.progress, _steps_logged(log), total)

    def follow():
        seen = 0
        while True:
            finished = stop.wait(0.5)
            lines = log.read_text().splitlines() if log.exists() else []
            seen = min(seen, len(lines))  # a restart cut the log back to its checkpoint
            for line in lines[seen:]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line being written
                seen += 1
                if any(k.startswith("loss/") for k in record) and "step" in record:
                    progress.update(record["step"] + 1, record)
            if finished:
                return
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        progress.close()


def _steps_logged(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if '"loss/' in line) if log.exists() else 0


def _fit(cfg: TrainConfig, scale: ScaleConfig, placement: Placement, run_dir: Path, meta: dict) -> None:
    import inspect

    import ray.train
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    if "checkpoint_upload_fn" not in inspect.signature(ray.train.report).parameters:
        raise SupernetError("supernet train --workers needs Ray Train V2 (ray >= 2.51, RAY_TRAIN_V2_ENABLED unset or 1)")
    gpus = scale.gpus_per_worker
    trainer = TorchTrainer(
        _worker, train_loop_config={"train": asdict(cfg), "run_dir": str(run_dir.resolve()), "meta": meta,
                                    "placement": placement},
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        scaling_config=ScalingConfig(num_workers=scale.workers, use_gpu=bool(gpus),
                                     resources_per_worker={"CPU": placement.cpu_threads or 1, **({"GPU": gpus} if gpus else {})}),
        run_config=RunConfig(name="checkpoints", storage_path=str(run_dir.resolve()),
                             failure_config=FailureConfig(max_failures=scale.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=None)))
    try:
        _fit_interruptibly(trainer)
    except Exception as exc:  # noqa: BLE001  (Ray wraps the workers' errors; one line for the user)
        raise SupernetError(f"distributed training failed after {scale.max_failures} restart(s): "
                            f"{_worker_error(exc)}; the latest checkpoint is kept, continue with "
                            f"`supernet train --resume --out {run_dir} --workers {scale.workers}`") from None


def _fit_interruptibly(trainer) -> None:
    """``trainer.fit()`` in a thread, so that Ray Train installs no SIGINT handler of its own (it would end the
    process with status 1 and no word): SIGINT / SIGTERM here raise ``KeyboardInterrupt``, the driver ends,
    and the workers, which it owns, end with it; the step-* checkpoints on disk are whole."""
    box: dict = {}

    def fit():
        try:
            trainer.fit()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
            box["error"] = exc
    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    with interruptible():
        while thread.is_alive():
            thread.join(0.5)
    if "error" in box:
        raise box["error"]


def _worker_error(exc: BaseException) -> str:
    """The first worker's error as one line (a SupernetError's own message), else Ray's."""
    failures = getattr(exc, "worker_failures", None) or {}
    for error in failures.values():
        cause = getattr(error, "cause", None) or error
        text = str(cause).strip().splitlines()
        if isinstance(cause, SupernetError) and text:
            return text[0]
    text = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (text[-1] if text else type(exc).__name__)[:300]


# -- on each worker ------------------------------------------------------------------------
def _worker(config: dict) -> None:
    """Ray Train's loop on one rank, with the placement's torch threads."""
    import ray.train.torch
    placement = config["placement"]
    if placement.device.type == "cuda":
        placement = placement.bound(ray.train.torch.get_device())
    with placement.threads():
        _fit_rank(config, placement)


def _fit_rank(config: dict, placement: Placement) -> None:
    """Build the run, restore the latest checkpoint, fit under DDP."""
    import ray.train
    from torch.nn.parallel import DistributedDataParallel
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    cfg, run_dir = TrainConfig.from_dict(config["train"]), Path(config["run_dir"])
    device = placement.device
    setup = build_setup(cfg, placement)
    start, state = _restore(setup.model, run_dir, device)
    prepare_model(setup, cfg, start)  # the same on every rank: same model, same calibration batches
    if rank == 0:
        remove_stale_temps(run_dir)
    hook = RayCheckpointHook(run_dir, config["meta"], cfg.checkpoint_every, start, rank)
    log, hooks = run_hooks(run_dir, cfg, setup, start, hook, quiet=True) if rank == 0 else (None, [hook])
    if log is not None:  # one line per (re)start: where a worker failure sent the run back to
        log.log({"event": "workers-started", "from_step": start, "workers": world, "time": round(time.time(), 4)})
    trainer = Trainer(setup.model, setup.task, cfg, placement, setup.total, hooks,
                      teacher=fixed_teacher(setup, start, device, log))
    if state is not None:
        trainer.load_state_dict(state)
    trainer.net = DistributedDataParallel(trainer.model, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=True, forward_sync_buffers=False)
    trainer.average = mean_over_ranks
    try:
        trainer.fit(setup.data.train_batches(start, cfg.batch_size, cfg.seed, shard=(rank, world)), start)
    finally:
        if log is not None:
            log.close()


def _restore(model: torch.nn.Module, run_dir: Path, device) -> tuple[int, dict | None]:
    """Load the run folder's newest complete checkpoint (a resumed run's, or the latest one saved before a
    worker failure); ``(step, trainer state)``, or ``(0, None)`` for a fresh run.

    The ``step-*`` folders are the truth, not Ray's record of them: Ray registers a reported checkpoint
    asynchronously, so after a worker is killed it may name one that a newer checkpoint already pruned."""
    if not has_checkpoint(run_dir):
        return 0, None
    folder = resolve_checkpoint(run_dir)
    return load_checkpoint_into(model, folder), load_trainer_state(folder, device)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over all ranks (one all-reduce)."""
    import torch.distributed as dist
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in order: equal on two ranks only when the weights are bit-identical."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class RayCheckpointHook(CheckpointHook):
    """Every ``every`` steps and at the end: check the ranks agree, then rank 0's checkpoint
    through ``ray.train.report`` into ``run_dir/checkpoints/step-N`` (every rank reports, as Ray requires)."""

    def __init__(self, run_dir: Path, meta: dict, every: int, saved: int, rank: int):
        super().__init__(run_dir, meta, every, saved)
        self.rank = rank

    def write(self, trainer, done: int) -> None:
        import ray.train
        import torch.distributed as dist
        prints = [None] * dist.get_world_size()
        dist.all_gather_object(prints, weights_fingerprint(trainer.model))
        if len(set(prints)) > 1:
            raise SupernetError(f"the workers' weights differ at step {done} (fingerprints {prints}); "
                                "the run cannot continue consistently")
        checkpoint = None
        if self.rank == 0:
            folder = make_temp_dir(self.run_dir / "checkpoints", f".step-{done:07d}.tmp-")
            meta = {**self.meta, "ray": {**self.meta.get("ray", {}), "weights_sha256": prints}}
            write_checkpoint(folder, done, trainer.model, meta, trainer.state_dict())
            checkpoint = ray.train.Checkpoint.from_directory(str(folder))
        ray.train.report({"step": done}, checkpoint=checkpoint, checkpoint_dir_name=f"step-{done:07d}",
                         checkpoint_upload_fn=publish)

    def interrupted(self, trainer, done: int) -> None:
        pass  # workers are not interrupted by signals; Ray restarts them from the latest checkpoint


def publish(checkpoint, name: str):
    """Ray's upload step: rename rank 0's finished temp folder to ``checkpoints/<name>`` (atomic: a
    folder named ``step-*`` is always complete), keep the newest two, return the persisted checkpoint."""
    import ray.train
    source = Path(checkpoint.path)
    final = source.parent / name
    normal_modes(source)
    if final.exists():  # redone after a restart from an earlier checkpoint: same step, same content
        shutil.rmtree(final)
    os.replace(source, final)
    prune_checkpoints(final.parent)
    return ray.train.Checkpoint(str(final))
