"""The public Python API, one function per CLI subcommand."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from .arch import Arch
from .checkpoint import load_checkpoint, resolve_checkpoint, run_of
from .data import checkpoint_data
from .device import Placement
from .errors import SupernetError
from .evaluation import evaluate_arch
from .registry import get_space
from .task import make_task
from .exporter import export_from_checkpoint as export, load_exported  # noqa: F401
from .runs import check_apart, read_json
from .training import TrainConfig, resume_training, train  # noqa: F401


def task_of(meta: dict):
    """The task a checkpoint was trained on (its space's kind, its saved training options)."""
    options = meta["train"]
    return make_task(meta.get("task") or get_space(meta["space"]).task,
                     label_smoothing=options.get("label_smoothing", 0.0), kd=options.get("kd", "kl"),
                     alpha_min=options.get("alpha_min", -1.0), alpha_max=options.get("alpha_max", 1.0),
                     alpha_clamp=options.get("alpha_clamp", 5.0))


def evaluate(checkpoint: str | os.PathLike, archs: Iterable[Arch | str | dict], splits=("val", "test"),
             calib_batches: int = 8, device: str = "auto", precision: str = "fp32",
             channels_last: bool = False) -> list[dict]:
    """Evaluate archs of a trained supernet; one dict per arch with the task's score per split
    (e.g. ``val_accuracy``), FLOPs (MACs) and params. BN is recalibrated per arch on ``device``.

    An arch is an :class:`Arch`, a dict, JSON text, a JSON file path, or ``largest|smallest|median``.
    """
    placement = Placement.make(device, precision, channels_last)
    model, meta = load_checkpoint(checkpoint)
    archs = [model.space.load_arch(a) if isinstance(a, str) else model.space.make(a) for a in archs]
    data, calib = checkpoint_data(meta, calib_batches)
    model, task = placement.model(model), task_of(meta)
    return [{"arch": arch.to_dict(), **evaluate_arch(model, arch, calib, data, splits, task, placement)}
            for arch in archs]


def export_from_search(search_run: str | os.PathLike, pick: str, out: str | os.PathLike, *,
                       budgets: dict | None = None, checkpoint: str | os.PathLike | None = None, onnx: bool = True,
                       overwrite: bool = False) -> tuple[Path, dict]:
    """Export the arch that ``pick`` chooses from a search run; returns ``(folder, record)``.

    ``arch.json`` records under ``picked`` what the subnet scored when the search evaluated it
    (e.g. validation accuracy, FLOPs), with the search run, the pick rule and the split.
    ``checkpoint`` defaults to the one the search ran on.
    """
    from .search_outputs import pick_from_search
    record, config = pick_from_search(search_run, pick, budgets)
    check_apart(out, [search_run])
    source = config.get("source", {})
    checkpoint = checkpoint or source.get("checkpoint")
    if checkpoint is None:
        raise SupernetError("export needs CHECKPOINT (a run folder or checkpoint folder): the search names none")
    scores = {k: v for k, v in record.items() if k not in ("arch", "index", "is_pareto")}
    picked = {"search": str(Path(search_run).resolve()), "pick": pick, "evaluation": record["index"],
              "split": source.get("split", "val"), **scores}
    return export(checkpoint, record["arch"], out, onnx=onnx, overwrite=overwrite, extra={"picked": picked}), record


class CheckpointEvaluator:
    """``evaluator(arch) -> {"accuracy", "flops", "params"}`` for the archs of a trained supernet.

    The checkpoint is loaded once; the data and the BN calibration batches (``calib_batches``
    batches of 256 training inputs, as ``supernet eval`` uses) are built once, on the first
    call. Accuracy is on the validation split with BN recalibrated for the arch; FLOPs
    (MACs) and params are exact (``costs`` holds them as functions of the arch).
    """

    def __init__(self, checkpoint: str | os.PathLike, calib_batches: int = 8, placement: Placement | None = None):
        self.placement = placement or Placement.make("cpu")
        model, self.meta = load_checkpoint(checkpoint)
        self.model, self.task = self.placement.model(model), task_of(self.meta)
        self.folder = resolve_checkpoint(checkpoint).resolve()
        self.space, self.calib_batches, self._data = self.model.space, calib_batches, None
        self.costs = {"flops": self.model.flops, "params": self.model.params}

    def load_data(self) -> None:
        """Build the data and BN batches now (else on the first call)."""
        if self._data is None:
            self._data = checkpoint_data(self.meta, self.calib_batches)

    def __call__(self, arch: Arch) -> dict:
        self.load_data()
        data, calib = self._data
        result = evaluate_arch(self.model, arch, calib, data, ["val"], self.task, self.placement)
        name = self.task.score_name
        return {name: result[f"val_{name}"], "flops": result["flops"], "params": result["params"]}


def search(checkpoint: str | os.PathLike | None = None, config=None, out: str | os.PathLike | None = None, *,
           resume: bool = False, overwrite: bool = False, progress: bool = True, tensorboard: bool = True,
           calib_batches: int = 8, latency_table: str | os.PathLike | None = None, option_names=None,
           device: str = "auto", precision: str = "fp32", channels_last: bool = False,
           ray_address: str | None = None, eval_workers: int | None = None, eval_retries: int = 1):
    """Predictor-guided NSGA-II over a trained supernet's archs; returns a ``SearchResult``.

    ``config`` is a :class:`supernet.search_loop.SearchConfig` (default: accuracy vs FLOPs, 200
    real evaluations). ``out`` is the run folder (default ``runs/search-<time>``). With
    ``resume=True``, ``out`` names the search to continue and the checkpoint and config are
    the saved ones. See :mod:`supernet.search_loop` for the algorithm and the run folder.

    Latency (an objective or ``budgets["latency"]``, in ms) needs ``config.target`` and a
    latency table of this device (``latency_table``, or the matching file in ``latency/``):
    the search uses the table + correction predictor, then measures the returned front
    for real (``front_latency.json`` in the run folder, and ``latency_measured_ms`` per row).
    ``option_names`` maps config fields to the caller's option names in messages (the CLI's flags).

    ``ray_address`` (a cluster; see :mod:`supernet.ray_cluster`) or ``eval_workers`` alone (a local
    Ray instance) run the real evaluations on ``eval_workers`` Ray actors (default: one per CPU of
    the cluster, per GPU with a CUDA device), each failed attempt tried again ``eval_retries`` times
    (:class:`supernet.ray_eval.RayEvaluator`), and the front's latency on a node tagged
    ``target:<target>``. The results are the same as a local search's.
    """
    from .search_loop import run_search
    if config is not None:
        config.resolved().check(option_names)  # user mistakes first, before the checkpoint is loaded
        _uses_latency(config)
    if resume:
        if out is None:
            raise SupernetError("--resume needs --out RUN naming the search to continue")
        saved_run = read_json(Path(out) / "config.json", "search config")
        source = saved_run.get("source", {})
        if checkpoint is not None and resolve_checkpoint(checkpoint).resolve() != Path(source.get("checkpoint", "")):
            raise SupernetError(f"the search in {str(out)!r} ran on {source.get('checkpoint')!r}; resume it without "
                                "CHECKPOINT or with that one")
        checkpoint, calib_batches = source.get("checkpoint"), source.get("calib_batches", calib_batches)
    if checkpoint is None:
        raise SupernetError("search needs CHECKPOINT: a training run folder or a checkpoint folder")
    evaluator = CheckpointEvaluator(checkpoint, calib_batches, Placement.make(device, precision, channels_last))
    config = _score_objectives(config, evaluator.task)
    if out is not None:
        check_apart(out, [run_of(evaluator.folder)])
    source = {"checkpoint": str(evaluator.folder), "space": evaluator.meta["space"],
              "variant": evaluator.meta.get("variant"), "step": evaluator.meta.get("step"),
              "calib_batches": calib_batches, "split": "val"}
    out = Path(out) if out is not None else Path("runs") / f"search-{time.strftime('%Y%m%d-%H%M%S')}"
    costs, table = dict(evaluator.costs), None
    saved = config if not resume else _saved_search_config(saved_run)
    uses_latency = saved is not None and _uses_latency(saved)
    if uses_latency and not evaluator.space.all_latency_units():
        evaluator = MeasuredLatency(evaluator, saved.target)  # no table: every evaluated subnet is timed
        source.update(latency="measured on each evaluated subnet", latency_target=saved.target)
    elif uses_latency:
        from .latency_api import find_table, latency_cost
        table = find_table(saved.target, evaluator.space, latency_table)
        costs["latency"] = latency_cost(table, evaluator.space)
        source.update(latency_table=str(latency_table or "latency/"), latency_profile=table.fingerprint)
    run = lambda chosen: run_search(evaluator.space, chosen, config, costs=costs, out=out, resume=resume,  # noqa: E731
                                    overwrite=overwrite, progress=progress, tensorboard=tensorboard, source=source,
                                    option_names=option_names)
    if ray_address is None and eval_workers is None:
        result = run(evaluator)
        if table is not None:
            _measure_front(result, evaluator.space, table)
        return result
    return _search_on_ray(run, evaluator, saved, table, ray_address, eval_workers, eval_retries,
                          (device, precision, channels_last))


def _search_on_ray(run, evaluator, saved, table, address, workers, retries, placement):
    """``run(evaluator)`` with a :class:`~supernet.ray_eval.RayEvaluator` of the checkpoint; the front's latency
    measured on the target's node."""
    from .ray_cluster import ray_session, target_resource
    from .ray_eval import CheckpointMaker, RayEvaluator, measure_on_target
    target = saved.target if saved is not None else None
    device, precision, channels_last = placement
    with ray_session(address, cpus=workers or 1, resources={target_resource(target): 1} if target else None) as ray:
        gpu = device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1)
        workers = workers or max(1, int(ray.cluster_resources().get("GPU" if gpu else "CPU", 1)))
        timeout = saved.resolved().eval_timeout if saved is not None else None
        maker = CheckpointMaker(evaluator.folder, evaluator.calib_batches, "cuda" if gpu else "cpu", precision,
                                channels_last)
        pool = RayEvaluator(maker, workers, timeout=timeout, retries=retries, gpus=1 if gpu else 0)
        try:
            result = run(pool)
        finally:
            pool.close()
        if table is not None:
            _measure_front(result, evaluator.space, table, lambda s, a, cfg: measure_on_target(s, a, cfg, target))
    return result


class MeasuredLatency:
    """An evaluator that also times each evaluated arch's static subnet on ``target`` (``latency`` in ms).

    For spaces without a latency table (e.g. ``llm_lora``, whose subnet is a merged Hugging Face
    model): the search predicts latency from these real measurements like any measured metric.
    """

    def __init__(self, inner, target: str, threads: int = 2):
        from .latency import MeasureConfig
        self.inner, self.cfg = inner, MeasureConfig(target=target, threads=threads)
        self.cfg.check()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, arch: Arch) -> dict:
        from .latency import measure_subnet
        return {**self.inner(arch), "latency": measure_subnet(self.inner.space, arch, self.cfg)["median_ms"]}


def _score_objectives(config, task):
    """``accuracy`` stands for the task's score: a language model's search minimises validation ``loss``."""
    if config is None or task.score_name == "accuracy":
        return config
    from dataclasses import replace
    swap = {"accuracy": task.score_name, "accuracy:max": task.score_name}
    return replace(config, objectives=tuple(swap.get(o, o) for o in config.resolved().objectives))


def _uses_latency(config) -> bool:
    config = config.resolved()
    used = "latency" in config.objectives or "latency" in config.budgets
    if used and config.target is None:
        raise SupernetError("a latency objective or --max-latency-ms needs --target (e.g. --target cpu)")
    return used or config.target is not None


def _saved_search_config(saved_run: dict):
    from .search_loop import SearchConfig
    return SearchConfig.from_dict(saved_run["search"]) if "search" in saved_run else None


def _measure_front(result, space, table, measure=None) -> None:
    """Measure every front arch's extracted subnet on the table's target (``measure``, default
    :func:`supernet.latency.measure_subnets` here); record it beside the run."""
    from .latency import measure_subnets
    from .runs import atomic_write_json
    measured = (measure or measure_subnets)(space, [space.make(row["arch"]) for row in result.front], table.cfg)
    for row, m in zip(result.front, measured):
        row["latency_measured_ms"] = m["median_ms"]
    if result.run_dir is not None:
        atomic_write_json(result.run_dir / "front_latency.json",
                          {"target": table.cfg.target, "fingerprint": table.fingerprint,
                           "front": [{"arch": r["arch"], "latency_predicted_ms": r.get("latency"),
                                      "latency_measured_ms": r["latency_measured_ms"]} for r in result.front]})
