"""The public Python API, one function per CLI subcommand: the front door that composes the stages.

It is the one place that chooses between computing here and on Ray (``scale``, ``ray_address``,
``eval_workers``), that turns ``device`` / ``precision`` / ``channels_last`` / ``threads`` into the command's
one :class:`~supernet.core.placement.Placement` (built once per command, then passed down; its
``threads()`` block is where torch's CPU thread count is set), and that hands the search its predictors
(:func:`predictors.make_predictor`). Lower stages never import it.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from .core.arch import Arch
from .core.contract import hook
from .core.errors import SupernetError
from .core.placement import CPU, Placement
from .core.signals import interruptible
from .core.space import SearchSpace
from .core.task import task_of_run
from .evaluation.checkpoint import CheckpointEvaluator
from .evaluation.subnet import evaluate_arch
from .evaluation.recalibrated import checkpoint_data
from .evaluation.recalibrated import export_from_checkpoint as export
from .io.checkpoint import has_checkpoint, load_checkpoint, resolve_checkpoint, run_of
from .io.files import read_json
from .io.runs import check_apart, release_run_dir
from .training.train_config import FinetuneConfig, ScaleConfig, TrainConfig, with_space_defaults
from .training.run import removed_on_failure, run_folder, train_here
from .training.setup import resolved_config

__all__ = ["train", "resume_training", "evaluate", "export", "export_from_search", "finetune", "search",
           "run_search", "pack_data", "import_weights", "import_ofa"]


# -- data -------------------------------------------------------------------------------------
def pack_data(source: str | os.PathLike, out: str | os.PathLike, size: int, *, workers: int = 2,
              shard_mb: int = 1024, overwrite: bool = False, progress: bool = True) -> dict:
    """Decode the image folder ``source`` once into shards at ``out`` (shorter side at most ``size``),
    for ``--data packed:OUT`` (:mod:`supernet.data.pack`); returns what ``meta.json`` records."""
    from .data.pack import pack_imagefolder
    return pack_imagefolder(source, out, size, workers=workers, shard_mb=shard_mb, overwrite=overwrite,
                            progress=progress)


# -- train ------------------------------------------------------------------------------------
def train(cfg: TrainConfig, out: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False,
          protect: tuple = (), scale: ScaleConfig | None = None) -> Path:
    """Train a supernet; returns the run folder (its latest checkpoint is the result).

    The run folder may not be, contain or sit inside what the run reads (its data, a base model)
    nor any path in ``protect``. ``scale`` runs the same training on Ray Train workers
    (:mod:`supernet.distributed.train`); the run folder is the same either way. Every option is
    checked before anything is written; a run that fails before its first checkpoint leaves no
    folder behind; SIGINT/SIGTERM write a checkpoint and raise a SupernetError naming how to resume.
    ``cfg.init`` starts from the weights of another run of the same space (:mod:`supernet.training.init`);
    a run is resumed with the init it started from, or refused.
    """
    if not isinstance(cfg, TrainConfig):
        raise SupernetError(f"train needs a TrainConfig, got {type(cfg).__name__}")
    cfg = resolved_config(cfg)
    if scale is not None:
        scale.check(cfg)
    placement = cfg.placement() if scale is None else cfg.worker_placement(scale.gpus_per_worker > 0)
    run_dir = run_folder(cfg, out, resume, overwrite, protect)  # claimed until the run ends
    try:
        if resume and not has_checkpoint(run_dir):
            raise SupernetError(f"{str(run_dir)!r} holds no checkpoint to resume from (the run stopped before its "
                                "first); start it again: the same command with --overwrite instead of --resume")
        if resume and cfg.init != read_json(run_dir / "config.json", "run config")["train"].get("init"):
            raise SupernetError("--init starts a new run from another run's weights, --resume continues the run in "
                                "--out from its own: give one of them")
        with removed_on_failure(run_dir, resume):
            if scale is None:
                with placement.threads():
                    return train_here(cfg, placement, run_dir, resume)
            from .distributed.train import train_on_ray
            return train_on_ray(cfg, scale, placement, run_dir, resume)
    finally:
        release_run_dir(run_dir)


def resume_training(run_dir: str | os.PathLike, device: str | None = None, scale: ScaleConfig | None = None) -> Path:
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
        cfg = replace(cfg, device=device)
    return train(cfg, run_dir, resume=True, scale=scale)


# -- import ------------------------------------------------------------------------------------
def import_weights(source: str, net: str, weights: str | os.PathLike, out: str | os.PathLike, *,
                   resolutions: Iterable[int] | None = None, overwrite: bool = False) -> Path:
    """A run folder at ``out`` from another project's supernet file ``weights`` (``supernet import``):
    ``source`` names the project (``ofa``), ``net`` its network (e.g. ``ofa_mbv3_d234_e346_k357_w1.0``);
    the converter a space registered for them (:func:`supernet.core.registry.register_importer`) maps
    the file's tensors onto the space's supernet, read without executing code. ``resolutions``
    narrows the run's input sizes (default: those the net was trained on). The folder holds what
    ``supernet train`` writes, so every command accepts it; on any error nothing is written."""
    from dataclasses import asdict

    from .core.registry import config_to_dict, get_space, importers
    from .io.imported import check_out, file_digest, save_imported
    table = importers(source)
    if not table:
        known = sorted(importers())
        raise SupernetError(f"no importer for {source!r}; known sources: {', '.join(known) or 'none'}")
    if net not in table:
        raise SupernetError(f"{source} has no net {net!r}; choose one of: {', '.join(sorted(table))}")
    out = check_out(out, weights, overwrite)
    space, variant, config, state = table[net](weights, None if resolutions is None else tuple(resolutions))
    train_cfg = with_space_defaults(TrainConfig(data=None, space=space, variant=variant),
                                    get_space(space).train_defaults)
    meta = {"space": space, "variant": variant, "space_config": config_to_dict(config), "train": asdict(train_cfg),
            "data": None, "total_steps": 0, "task": get_space(space).task, "image_size": max(getattr(config, "resolutions", [0])) or None,
            "imported": {"source": source, "net": net, "weights": str(Path(weights).resolve()),
                         "bytes": Path(weights).stat().st_size, "sha256": file_digest(weights)}}
    return save_imported(out, space, config, state, meta, overwrite=overwrite)


def import_ofa(net: str, weights: str | os.PathLike, out: str | os.PathLike, **options) -> Path:
    """:func:`import_weights` from OFA (``supernet import ofa --net NET --weights FILE --out RUN``)."""
    return import_weights("ofa", net, weights, out, **options)


# -- evaluate and export -------------------------------------------------------------------------
def evaluate(checkpoint: str | os.PathLike, archs: Iterable[Arch | str | dict] | str | dict | Arch,
             splits=("val", "test"), calib_batches: int = 8, device: str = "auto", precision: str = "fp32",
             channels_last: bool = False, threads: int | None = None, data: str | None = None) -> list[dict]:
    """Evaluate archs of a trained supernet; one dict per arch with the task's score per split
    (e.g. ``val_accuracy``), FLOPs (MACs) and params. BN is recalibrated per arch on ``device``, with
    ``threads`` torch CPU threads (None: torch's choice; ``--threads``). ``data`` (``imagefolder:PATH`` /
    ``packed:PATH``) replaces the run's own data, and is needed by a run of imported weights
    (:func:`supernet.evaluation.recalibrated.checkpoint_data`).

    An arch is an :class:`Arch`, a dict, JSON text, a JSON file path, or ``largest|smallest|median``;
    ``archs`` is one of them or a list of them.
    """
    placement = Placement.make(device, precision, channels_last, threads)
    with placement.threads():
        model, meta = load_checkpoint(checkpoint)
        archs = [_arch(model.space, a) for a in ([archs] if isinstance(archs, (str, dict, Arch)) else list(archs))]
        data, calib = checkpoint_data(meta, calib_batches, data)
        model, task = placement.model(model), task_of_run(meta)
        return [{"arch": arch.to_dict(), **evaluate_arch(model, arch, calib, data, splits, task, placement)}
                for arch in archs]


def _arch(space: SearchSpace, value) -> Arch:
    if isinstance(value, str):
        return space.load_arch(value)
    if isinstance(value, (dict, Arch)):
        return space.make(value)
    raise SupernetError(f"an arch is an Arch, a dict, JSON text, a JSON file or largest|smallest|median; got "
                        f"{type(value).__name__}")


def export_from_search(search_run: str | os.PathLike, pick: str, out: str | os.PathLike, *,
                       budgets: dict | None = None, checkpoint: str | os.PathLike | None = None, onnx: bool = True,
                       overwrite: bool = False, data: str | None = None) -> tuple[Path, dict]:
    """Export the arch that ``pick`` chooses from a search run; returns ``(folder, record)``.

    ``arch.json`` records under ``picked`` what the subnet scored when the search evaluated it
    (e.g. validation accuracy, FLOPs), with the search run, the pick rule and the split.
    ``checkpoint`` defaults to the one the search ran on; ``data`` to the ``--data`` the search ran with.
    """
    from .nas.outputs import pick_from_search
    record, config = pick_from_search(search_run, pick, budgets)
    check_apart(out, [search_run])
    source = config.get("source", {})
    checkpoint = checkpoint or source.get("checkpoint")
    if checkpoint is None:
        raise SupernetError("export needs CHECKPOINT (a run folder or checkpoint folder): the search names none")
    scores = {k: v for k, v in record.items() if k not in ("arch", "index", "is_pareto")}
    picked = {"search": str(Path(search_run).resolve()), "pick": pick, "evaluation": record["index"],
              "split": source.get("split", "val"), **scores}
    data = data or source.get("data")
    return export(checkpoint, record["arch"], out, onnx=onnx, overwrite=overwrite, extra={"picked": picked},
                  data=data), record


def finetune(export: str | os.PathLike | None, out: str | os.PathLike, *, checkpoint=None,
             config: FinetuneConfig | None = None, resume: bool = False, overwrite: bool = False,
             onnx: bool = True, from_search: str | os.PathLike | None = None, pick: str = "max-accuracy-under-budget",
             budgets: dict | None = None) -> Path:
    """Fine-tune the subnet of ``export`` (or of the arch ``pick`` chooses from the search ``from_search``,
    exported first into ``out/source``) with distillation from its supernet's largest subnet; ``out`` ends
    up an export folder, computed on ``config``'s device, precision and threads (with ``resume``: the saved
    config's). See :func:`supernet.training.finetune.finetune`."""
    from .training.finetune import finetune as finetune_export
    from .training.finetune import saved_finetune
    if export is not None and from_search is not None:
        raise SupernetError("give EXPORT or --from-search, not both")
    config = saved_finetune(out)[2] if resume else (config or FinetuneConfig())
    config.check()
    placement = config.placement()
    make = None
    if export is None and from_search is not None:
        def make(folder: Path) -> Path:
            return export_from_search(from_search, pick, folder, budgets=budgets, checkpoint=checkpoint,
                                      onnx=False, data=config.data if config else None)[0]
    with placement.threads():
        return finetune_export(export, out, placement=placement, checkpoint=checkpoint, config=config, resume=resume,
                               overwrite=overwrite, onnx=onnx, make_export=make,
                               sources=[from_search] if from_search else [])


# -- search ---------------------------------------------------------------------------------------
def run_search(space: SearchSpace, evaluator, config=None, *, predictor_factory=None, **options):
    """Search any space with any evaluator (:func:`supernet.nas.loop.run_search`), with this project's
    predictors (:func:`predictors.make_predictor`) unless ``predictor_factory`` is given."""
    try:
        return _run_search(space, evaluator, config, predictor_factory=predictor_factory, **options)
    finally:
        release_run_dir(options.get("out"))  # claimed by the loop (supernet.io.claim)


def _run_search(space: SearchSpace, evaluator, config=None, *, predictor_factory=None, **options):
    from .nas.loop import run_search as search_loop
    if predictor_factory is None:
        from predictors import make_predictor as predictor_factory
    return search_loop(space, evaluator, config, predictor_factory=predictor_factory, **options)


def search(checkpoint: str | os.PathLike | None = None, config=None, out: str | os.PathLike | None = None, *,
           resume: bool = False, overwrite: bool = False, progress: bool = True, tensorboard: bool = True,
           calib_batches: int = 8, latency_table: str | os.PathLike | None = None, option_names=None,
           device: str = "auto", precision: str = "fp32", channels_last: bool = False, threads: int | None = None,
           ray_address: str | None = None, eval_workers: int | None = None, eval_retries: int = 1,
           latency_timer=None, data: str | None = None, compare: Iterable[str] = ()):
    """Predictor-guided NSGA-II over a trained supernet's archs; returns a ``SearchResult``.

    ``config`` is a :class:`supernet.nas.search_config.SearchConfig` (default: accuracy vs FLOPs, 200
    real evaluations). ``out`` is the run folder (default ``runs/search-<time>``). With
    ``resume=True``, ``out`` names the search to continue and the checkpoint and config are
    the saved ones. See :mod:`supernet.nas.loop` for the algorithm and the run folder.

    Latency (an objective or ``budgets["latency"]``, in ms) needs ``config.target`` and a
    latency table of this device (``latency_table``, or the matching file in ``latency/``).
    First the table's reference arch is measured again: when this machine runs measurably slower
    or faster than when the table was built, the table's predictions are scaled for this search
    and a warning says so (:mod:`supernet.hardware.drift`). The search uses the table + correction
    predictor, then measures the returned front and picks for real, in two fresh processes of
    interleaved rounds: ``latency_measured_ms``, its p10-p90 ``latency_spread_ms`` and, under a
    latency budget, how sure each arch is to meet it, flagged when not clearly
    (:mod:`supernet.hardware.front`; ``front_latency.json``, ``pareto.json``'s ``latency_check``,
    the result's warnings). ``latency_timer`` replaces the target's clock in all of it (a
    simulated machine; measurements then stay in this process). A space without latency units
    has every evaluated subnet timed instead, with ``threads`` torch threads (default 2) on the ``cpu`` target.
    ``threads`` (``--threads``) is also the evaluations' torch CPU thread count (None: torch's choice here,
    1 per Ray actor).
    ``option_names`` maps config fields to the caller's option names in messages (the CLI's flags).

    ``data`` (``imagefolder:PATH`` / ``packed:PATH``) replaces the checkpoint's own data for BN
    recalibration and the validation score, and is needed by a run of imported weights
    (:func:`supernet.evaluation.recalibrated.checkpoint_data`); a resumed search keeps its own.
    ``compare`` names archs (e.g. ``ofa:ID``, OFA's own picks; ``ofa:all``: each that meets the budgets)
    evaluated after the search with the same evaluator and costs, measured like the front when a latency
    table is used, and returned as ``result.anchors`` beside the picks (``compare.json``; :mod:`supernet.nas.anchors`).

    ``ray_address`` (a cluster; see :mod:`supernet.distributed.cluster`) or ``eval_workers`` alone (a
    local Ray instance) run the real evaluations on ``eval_workers`` Ray actors (default: one per CPU
    of the cluster, per GPU with a CUDA device), each failed attempt tried again ``eval_retries``
    times (:class:`supernet.distributed.evaluate.RayEvaluator`), and the front's latency on a node
    tagged ``target:<target>``. The results are the same as a local search's.
    """
    if config is not None:
        config.resolved().check(option_names)  # user mistakes first, before the checkpoint is loaded
        _uses_latency(config)
    saved_run = None
    if resume:
        checkpoint, calib_batches, saved_run = resumed_source(out, checkpoint, calib_batches)
        data = saved_run.get("source", {}).get("data")
    if checkpoint is None:
        raise SupernetError("search needs CHECKPOINT: a training run folder or a checkpoint folder")
    here = ray_address is None and eval_workers is None
    placement = Placement.make(device, precision, channels_last, threads) if here else \
        Placement.for_workers(str(device).startswith("cuda"), precision, channels_last, threads)
    evaluator = CheckpointEvaluator(checkpoint, calib_batches, placement if here else CPU, data)
    compare = list(compare)
    if compare:  # every name checked before anything is written
        from .nas.anchors import anchor_archs
        anchor_archs(evaluator.space, compare, {}, {})
    evaluator.check_data()
    config = score_objectives(config, evaluator.task)
    if out is not None:
        check_apart(out, [run_of(evaluator.folder)])
    source = {"checkpoint": str(evaluator.folder), "space": evaluator.meta["space"],
              "variant": evaluator.meta.get("variant"), "step": evaluator.meta.get("step"),
              "calib_batches": calib_batches, "split": "val", **({"data": data} if data else {})}
    out = Path(out) if out is not None else Path("runs") / f"search-{time.strftime('%Y%m%d-%H%M%S')}"
    saved = config if not resume else _saved_search_config(saved_run)
    evaluator, costs, table = _latency(evaluator, saved, latency_table, source, placement.cpu_threads)
    evaluator = _int8(evaluator, saved, source)
    budget = saved.resolved().budgets.get("latency") if table is not None else None

    def run(chosen):
        try:
            with interruptible():
                return _run_search(evaluator.space, chosen, config, costs=costs, out=out, resume=resume,
                                   overwrite=overwrite, progress=progress, tensorboard=tensorboard, source=source,
                                   option_names=option_names)
        except KeyboardInterrupt:
            raise SupernetError(f"interrupted: every finished evaluation is saved in {out}; continue with "
                                f"`supernet search --resume --out {out}`") from None

    def hold(measure=None):
        """Check the table against this machine now; the latency cost, scaled when it drifted."""
        return hold_latency(table, evaluator.space, costs, source, measure, latency_timer)
    try:  # the run folder is claimed by the search loop until the front is measured too
        if here:
            with placement.threads():
                drift = hold() if table is not None else None
                result = run(evaluator)
            if table is not None:
                from .hardware.front import measure_front
                _drift_note(result, drift)
                measure_front(result, evaluator.space, table, budget=budget, drift=drift, timer=latency_timer)
            return _compare(result, evaluator, costs, saved, compare, table, budget, latency_timer)
        from .distributed.evaluate import RaySearch, attempts_log, search_on_ray
        ray_search = RaySearch(ray_address, eval_workers, eval_retries,
                               saved.resolved().eval_timeout if saved else None,
                               saved.target if saved is not None else None,
                               gpu=None if device in ("auto", None) else str(device).startswith("cuda"))
        result = search_on_ray(run, evaluator, placement, ray_search, table=table, hold=hold, budget=budget,
                               retry_log=attempts_log(out / "attempts.jsonl"))
        return _compare(result, evaluator, costs, saved, compare, table, budget, latency_timer)
    finally:
        release_run_dir(out)


def _compare(result, evaluator, costs, saved, names, table, budget, timer):
    """``result`` with its anchors: ``names`` evaluated here as the search evaluated its archs (their
    latency measured like the front's when a table is used), written to ``compare.json``."""
    if not names:
        return result
    from .nas.anchors import anchor_archs, evaluate_anchors, write_compare
    budgets = saved.resolved().budgets if saved is not None else {}
    archs = anchor_archs(evaluator.space, names, costs, budgets)
    result.anchors = evaluate_anchors(archs, evaluator, costs, budgets)
    if table is not None:
        from .hardware.front import measure_rows
        measure_rows(result.anchors, evaluator.space, table, budget=budget, timer=timer)
    if result.run_dir is not None:
        write_compare(result.run_dir, budgets, result.picks, result.anchors)
    return result


def resumed_source(out, checkpoint, calib_batches):
    """``(checkpoint, calib_batches, saved run config)`` of the search in ``out``."""
    if out is None:
        raise SupernetError("--resume needs --out RUN naming the search to continue")
    saved_run = read_json(Path(out) / "config.json", "search config")
    source = saved_run.get("source", {})
    if checkpoint is not None and resolve_checkpoint(checkpoint).resolve() != Path(source.get("checkpoint", "")):
        raise SupernetError(f"the search in {str(out)!r} ran on {source.get('checkpoint')!r}; resume it without "
                            "CHECKPOINT or with that one")
    return source.get("checkpoint"), source.get("calib_batches", calib_batches), saved_run


def _latency(evaluator, saved, latency_table, source: dict, threads: int | None = None):
    """``(evaluator, costs, table)``: latency from a table (a cost, at the threads the table was built with), or
    measured per subnet (a metric) with ``threads`` torch threads (None: the clock's default, 2)."""
    costs = dict(evaluator.costs)
    if saved is None or not _uses_latency(saved):
        return evaluator, costs, None
    if saved.latency_mode == "generate" and hook(evaluator.space, "all_latency_units")():
        raise SupernetError("--latency-mode generate times whole generating subnets; this space's latency comes from "
                            "a table of units: use --latency-mode forward")
    if not hook(evaluator.space, "all_latency_units")():
        from .hardware.generation import check_length
        from .hardware.subnet_latency import MeasuredLatency
        if saved.latency_mode == "generate":
            check_length(evaluator.space, saved.prefill_tokens, saved.decode_tokens)
        source.update(latency="measured on each evaluated subnet", latency_target=saved.target)
        source.update(latency_mode=saved.latency_mode)
        measured = MeasuredLatency(evaluator, saved.target, mode=saved.latency_mode, prefill=saved.prefill_tokens,
                                   decode=saved.decode_tokens, **({"threads": threads} if threads else {}))
        source.update(latency_threads=measured.cfg.threads)
        return measured, costs, None  # no table: every evaluated subnet is timed
    from .hardware.latency_api import find_table
    table = find_table(saved.target, evaluator.space, latency_table)
    source.update(latency_table=str(latency_table or "latency/"), latency_profile=table.fingerprint)
    return evaluator, costs, table


def _int8(evaluator, saved, source: dict):
    """On an int8 target, the evaluator scoring each arch's quantised model (:mod:`supernet.evaluation.int8`)."""
    from .evaluation.int8 import BACKENDS, Int8Evaluator
    backend = BACKENDS.get(getattr(saved, "target", None)) if saved is not None else None
    if backend is None:
        return evaluator
    source.update(score="int8 model, quantised on the calibration batches", int8_backend=backend)
    return Int8Evaluator(evaluator, backend)


def hold_latency(table, space, costs: dict, source: dict, measure=None, timer=None):
    """Re-measure ``table``'s reference arch (here, or with ``measure`` on the target's node); set
    ``costs["latency"]`` to the table + correction, scaled by the drift found; record and warn."""
    import warnings

    from predictors.latency import latency_cost

    from .hardware.drift import check_drift
    from .nas.search_config import SearchWarning
    drift = check_drift(table, space, measure, timer)
    costs["latency"] = latency_cost(table, space, drift.scale)
    source["latency_drift"] = drift.to_dict()
    if drift.status != "steady":
        warnings.warn(drift.message, SearchWarning, stacklevel=3)
    return drift


def _drift_note(result, drift) -> None:
    """The drift check's message first among the result's warnings, unless the table held."""
    if drift is not None and drift.status != "steady":
        result.warnings.insert(0, drift.message)


def score_objectives(config, task):
    """``accuracy`` stands for the task's score: a language model's search minimises validation ``loss``."""
    if config is None or task.score_name == "accuracy":
        return config
    swap = {"accuracy": task.score_name, "accuracy:max": task.score_name}
    return replace(config, objectives=tuple(swap.get(o, o) for o in config.resolved().objectives))


def _uses_latency(config) -> bool:
    config = config.resolved()
    used = "latency" in config.objectives or "latency" in config.budgets
    if used and config.target is None:
        raise SupernetError("a latency objective or --max-latency-ms needs --target (e.g. --target cpu)")
    return used or config.target is not None


def _saved_search_config(saved_run: dict):
    from .nas.search_config import SearchConfig
    return SearchConfig.from_dict(saved_run["search"]) if "search" in saved_run else None
