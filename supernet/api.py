"""The public Python API, one function per CLI subcommand."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from .arch import Arch
from .checkpoint import load_checkpoint, resolve_checkpoint
from .data import checkpoint_data
from .errors import SupernetError
from .evaluation import evaluate_arch
from .exporter import export_from_checkpoint as export, load_exported  # noqa: F401
from .runs import read_json
from .training import TrainConfig, resume_training, train  # noqa: F401


def evaluate(checkpoint: str | os.PathLike, archs: Iterable[Arch | str | dict], splits=("val", "test"),
             calib_batches: int = 8) -> list[dict]:
    """Evaluate archs of a trained supernet; one dict per arch with accuracy per split, FLOPs (MACs), params.

    An arch is an :class:`Arch`, a dict, JSON text, a JSON file path, or ``largest|smallest|median``.
    """
    model, meta = load_checkpoint(checkpoint)
    data, calib = checkpoint_data(meta["train"], calib_batches)
    chosen = {name: getattr(data, name) for name in splits}
    results = []
    for arch in archs:
        arch = model.space.load_arch(arch) if isinstance(arch, str) else model.space.make(arch)
        results.append({"arch": arch.to_dict(), **evaluate_arch(model, arch, calib, chosen)})
    return results


class CheckpointEvaluator:
    """``evaluator(arch) -> {"accuracy", "flops", "params"}`` for the archs of a trained supernet.

    The checkpoint is loaded once; the data and the BN calibration batches (``calib_batches``
    batches of 256 training inputs, as ``supernet eval`` uses) are built once, on the first
    call. Accuracy is on the validation split with BN recalibrated for the arch; FLOPs
    (MACs) and params are exact (``costs`` holds them as functions of the arch).
    """

    def __init__(self, checkpoint: str | os.PathLike, calib_batches: int = 8):
        self.model, self.meta = load_checkpoint(checkpoint)
        self.folder = resolve_checkpoint(checkpoint).resolve()
        self.space, self.calib_batches, self._data = self.model.space, calib_batches, None
        self.costs = {"flops": self.model.flops, "params": self.model.params}

    def __call__(self, arch: Arch) -> dict:
        if self._data is None:
            data, calib = checkpoint_data(self.meta["train"], self.calib_batches)
            self._data = calib, data.val
        calib, val = self._data
        result = evaluate_arch(self.model, arch, calib, {"val": val})
        return {"accuracy": result["val_accuracy"], "flops": result["flops"], "params": result["params"]}


def search(checkpoint: str | os.PathLike | None = None, config=None, out: str | os.PathLike | None = None, *,
           resume: bool = False, overwrite: bool = False, progress: bool = True, tensorboard: bool = True,
           calib_batches: int = 8, latency_table: str | os.PathLike | None = None, option_names=None):
    """Predictor-guided NSGA-II over a trained supernet's archs; returns a ``SearchResult``.

    ``config`` is a :class:`supernet.search.SearchConfig` (default: accuracy vs FLOPs, 200
    real evaluations). ``out`` is the run folder (default ``runs/search-<time>``). With
    ``resume=True``, ``out`` names the search to continue and the checkpoint and config are
    the saved ones. See :mod:`supernet.search` for the algorithm and the run folder.

    Latency (an objective or ``budgets["latency"]``, in ms) needs ``config.target`` and a
    latency table of this device (``latency_table``, or the matching file in ``latency/``):
    the search uses the table + correction predictor, then measures the returned front
    for real (``front_latency.json`` in the run folder, and ``latency_measured_ms`` per row).
    ``option_names`` maps config fields to the caller's option names in messages (the CLI's flags).
    """
    from .search import run_search
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
    evaluator = CheckpointEvaluator(checkpoint, calib_batches)
    source = {"checkpoint": str(evaluator.folder), "space": evaluator.meta["space"],
              "variant": evaluator.meta.get("variant"), "step": evaluator.meta.get("step"),
              "calib_batches": calib_batches, "split": "val"}
    out = Path(out) if out is not None else Path("runs") / f"search-{time.strftime('%Y%m%d-%H%M%S')}"
    costs, table = dict(evaluator.costs), None
    saved = config if not resume else _saved_search_config(saved_run)
    if saved is not None and _uses_latency(saved):
        from .latency_api import find_table, latency_cost
        table = find_table(saved.target, evaluator.space, latency_table)
        costs["latency"] = latency_cost(table, evaluator.space)
        source.update(latency_table=str(latency_table or "latency/"), latency_profile=table.fingerprint)
    result = run_search(evaluator.space, evaluator, config, costs=costs, out=out, resume=resume,
                        overwrite=overwrite, progress=progress, tensorboard=tensorboard, source=source,
                        option_names=option_names)
    if table is not None:
        _measure_front(result, evaluator.space, table)
    return result


def _uses_latency(config) -> bool:
    config = config.resolved()
    used = "latency" in config.objectives or "latency" in config.budgets
    if used and config.target is None:
        raise SupernetError("a latency objective or --max-latency-ms needs --target (e.g. --target cpu)")
    return used or config.target is not None


def _saved_search_config(saved_run: dict):
    from .search import SearchConfig
    return SearchConfig.from_dict(saved_run["search"]) if "search" in saved_run else None


def _measure_front(result, space, table) -> None:
    """Measure every front arch's extracted subnet on the table's target; record it beside the run."""
    from .latency import measure_subnets
    from .runs import atomic_write_json
    measured = measure_subnets(space, [space.make(row["arch"]) for row in result.front], table.cfg)
    for row, m in zip(result.front, measured):
        row["latency_measured_ms"] = m["median_ms"]
    if result.run_dir is not None:
        atomic_write_json(result.run_dir / "front_latency.json",
                          {"target": table.cfg.target, "fingerprint": table.fingerprint,
                           "front": [{"arch": r["arch"], "latency_predicted_ms": r.get("latency"),
                                      "latency_measured_ms": r["latency_measured_ms"]} for r in result.front]})
