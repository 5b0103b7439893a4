"""The pieces of ``bench_trust.py``: which archs, the per-arch jobs (run in worker processes,
each result written atomically as it finishes), and the comparison of two accuracy tables.

A job is ``(kind, run, index)``: ``eval`` (an arch of a trained supernet, BN recalibrated),
``ce`` / ``kd`` (the arch trained stand-alone from the supernet's initialisation with the
supernet's data, batches, steps, optimizer, LR schedule, label smoothing and clipping; on
the labels, or distilled from the supernet's largest subnet), ``ft-KD`` (the supernet's subnet
fine-tuned as ``supernet finetune --kd KD`` does: on the labels for ``none``, else distilled
from the largest).
"""
from __future__ import annotations

import functools
import json
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from scipy import stats

from supernet.io.files import atomic_write_json


# -- archs --------------------------------------------------------------------------------
def pick_archs(space, cost, n: int, seed: int, pool: int = 3000) -> list:
    """Smallest, largest and ``n - 2`` archs spread evenly over the cost range, sorted by cost.

    Targets ``t_j = lo + j (hi - lo) / (n - 1)``, ``j = 1 .. n - 2``; for each, the not yet
    chosen arch of a seeded pool whose cost is nearest ``t_j``. Uniform draws pile up in the
    middle of the range, so the pool mixes them with :func:`leaning_sample` draws.
    """
    rng = np.random.default_rng([seed, 15])
    draws = [space.sample(rng) if i % 2 else leaning_sample(space, rng) for i in range(pool)]
    candidates = list(dict.fromkeys(draws))
    chosen = [space.smallest(), space.largest()][:n]
    lo, hi = cost(chosen[0]), cost(space.largest())
    for t in np.linspace(lo, hi, n)[1:-1]:
        free = [a for a in candidates if a not in chosen]
        chosen.append(min(free, key=lambda a: abs(cost(a) - t)))
    return sorted(chosen, key=cost)


def leaning_sample(space, rng):
    """An arch leaning towards the largest by a random share ``q ~ U(0, 1)``: each position takes
    its largest choice with probability ``q``, else a uniform one."""
    top = space.encode(space.largest())
    q = rng.uniform()
    uniform = np.array([rng.integers(0, len(d.choices)) for d in space.dimensions
                        for _ in range(d.positions)])
    return space.decode(np.where(rng.uniform(size=top.shape) < q, top, uniform))


# -- comparison ---------------------------------------------------------------------------
def compare(supernet: dict, standalone: dict) -> dict:
    """Rank agreement and gaps of two tables ``arch key -> accuracy`` (0..1), joined on their keys.

    Kendall tau-b over all pairs i < j: ``(C - D) / sqrt((C + D + T_x)(C + D + T_y))``;
    Spearman rho: Pearson correlation of the ranks. Gap of arch i in points:
    ``g_i = 100 (standalone_i - supernet_i)`` (positive: the supernet under-rates it);
    ``mean_gap_pt = mean g_i``, ``mean_abs_gap_pt = mean |g_i|``, ``max_gap_pt = max g_i``.
    """
    keys = sorted(set(supernet) & set(standalone))
    if len(keys) < 2:
        return {"n": len(keys)}
    x = np.array([supernet[k] for k in keys], dtype=float)
    y = np.array([standalone[k] for k in keys], dtype=float)
    gap = 100.0 * (y - x)
    with warnings.catch_warnings():  # a constant side has no rank correlation: None, not a warning
        warnings.simplefilter("ignore")
        tau, rho = stats.kendalltau(x, y).statistic, stats.spearmanr(x, y).statistic
    return {"n": len(keys), "kendall_tau": _finite(tau), "spearman": _finite(rho), "mean_gap_pt": float(gap.mean()),
            "mean_abs_gap_pt": float(np.abs(gap).mean()), "max_gap_pt": float(gap.max()),
            "min_gap_pt": float(gap.min())}


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


# -- jobs (worker side) -------------------------------------------------------------------
def train_job(job: dict) -> dict:
    """Train (or continue) one run's supernet; at the deadline it checkpoints and stops (rerun to go on).
    ``{"kind": "train", "run", "checkpoint"}`` when finished, else ``{..., "error"}``."""
    import signal

    from supernet.api import resume_training, train
    from supernet.core.errors import SupernetError
    from supernet.io.checkpoint import resolve_checkpoint
    from supernet.training.train_config import TrainConfig
    folder, t0 = Path(job["folder"]), time.time()
    left = job["deadline"] - t0
    signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))
    signal.alarm(max(1, int(left)) if left < float("inf") else 0)
    try:
        if (folder / "config.json").exists() and any((folder / "checkpoints").glob("step-*")):
            resume_training(folder)
        else:
            train(TrainConfig(**job["config"]), folder, overwrite=True)
    except (SupernetError, KeyboardInterrupt) as exc:
        return {"kind": "train", "run": job["run"], "error": str(exc) or "interrupted"}
    finally:
        signal.alarm(0)
        _add_wall(folder, time.time() - t0)
    return {"kind": "train", "run": job["run"], "checkpoint": str(resolve_checkpoint(folder).resolve())}


def finished(folder: Path, total: int) -> bool:
    """Whether the supernet in ``folder`` has its final checkpoint (step ``total``)."""
    steps = sorted((Path(folder) / "checkpoints").glob("step-*"))
    return bool(steps) and int(steps[-1].name.split("-")[1]) == total and (Path(folder) / "wall.json").exists()


def _add_wall(folder: Path, seconds: float) -> None:
    """Add ``seconds`` to the training wall time in ``folder/wall.json`` (summed over resumed sessions)."""
    if not folder.exists():
        return
    path = folder / "wall.json"
    before = json.loads(path.read_text())["train_seconds"] if path.exists() else 0.0
    atomic_write_json(path, {"train_seconds": round(before + seconds, 1)})

def init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=4)
def _checkpoint(path: str):
    from supernet.io.checkpoint import load_checkpoint
    return load_checkpoint(path)


@functools.lru_cache(maxsize=4)
def _data(meta_json: str, calib_batches: int):
    from supernet.evaluation.recalibrated import checkpoint_data
    return checkpoint_data(json.loads(meta_json), calib_batches)


def _scores(net, prepare, data, task, placement) -> dict:
    from supernet.evaluation.subnet import score
    return {f"{s}_accuracy": score(net, data.eval_batches(s, 500), task, prepare, placement) for s in ("val", "test")}


def run_job(job: dict) -> dict:
    """Run one job and write its result to ``job["path"]`` (atomically); returns the result."""
    if job["kind"] == "train":
        return train_job(job)
    import torch

    from supernet.core.placement import Placement
    from supernet.core.registry import build_supernet, config_from_dict
    from supernet.core.task import task_of_run as task_of
    placement = Placement.make(job["device"])
    if job["checkpoint"]:
        model, meta = _checkpoint(job["checkpoint"])
    else:  # stand-alone: only the space and the recipe matter
        meta = job["meta"]
        model = build_supernet(meta["space"], config_from_dict(meta["space"], meta["space_config"]))
    model = placement.model(model)
    data, calib = _data(json.dumps(meta, sort_keys=True), job["calib_batches"])
    arch, task, t0 = model.space.make(job["arch"]), task_of(meta), time.perf_counter()
    if job["kind"] == "eval":
        from supernet.evaluation.subnet import evaluate_arch
        result = evaluate_arch(model, arch, calib, data, ["val", "test"], task, placement)
    else:
        result = _train_job(job, model, meta, arch, task, data, calib, placement)
    result.update(arch=arch.to_dict(), key=arch.to_json(), kind=job["kind"], recipe=job["recipe"],
                  seconds=round(time.perf_counter() - t0, 2), threads=torch.get_num_threads())
    Path(job["path"]).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job["path"], result)
    return result


def _train_job(job, model, meta, arch, task, data, calib, placement) -> dict:
    """Stand-alone (``ce``, ``kd``: fresh init) or fine-tuning (``ft-KD``: inherited weights) of one subnet."""
    import torch

    from supernet.core.registry import build_supernet
    from supernet.core.task import task_of_run
    from supernet.evaluation.subnet import calibrated_subnet
    from supernet.training.train_config import TrainConfig
    from supernet.training.finetune import train_subnet
    from supernet.training.teacher import largest_teacher
    cfg = replace(TrainConfig.from_dict(meta["train"]), **job["recipe"]["overrides"])
    total, finetune = job["recipe"]["steps"], job["kind"].startswith("ft")
    if finetune:  # as `supernet finetune --kd cfg.kd`: the subnet's inherited weights, BN recalibrated
        net, task = calibrated_subnet(model, arch, calib, placement), task_of_run(meta, kd=cfg.kd)
    else:
        torch.manual_seed(cfg.seed)  # the supernet's own initialisation, then its slice
        net = build_supernet(meta["space"], model.config).extract(arch)
    plain = job["kind"] == "ce" or task.at(0, total).labels_only
    teacher = None if plain else RowMemo(largest_teacher(model, calib, placement))
    trainer = train_subnet(net, arch, model, task, cfg, placement, data.train_batches(0, cfg.batch_size, cfg.seed),
                           total, teacher=teacher)
    net = trainer.model.net
    if finetune:  # as `supernet finetune`: BN recalibrated on the fixed batches at the end
        from supernet.layers.calibration import calibrate_bn
        calibrate_bn(net, lambda x: net(model.prepare_input(placement.input(x), arch)), calib)
    net.eval()
    return {**_scores(net, lambda x: model.prepare_input(x, arch), data, task, placement),
            "flops": model.flops(arch), "steps": total}


class RowMemo:
    """A frozen teacher's logits remembered per input row (CPU inputs), so each training example
    costs one teacher forward for the whole run. Exact: the teacher is in eval mode."""

    def __init__(self, teacher):
        self.teacher, self.memo = teacher, {}

    def __call__(self, x):
        import torch
        if x.device.type != "cpu":
            return self.teacher(x)
        keys = [row.tobytes() for row in x.numpy()]
        missing = [i for i, k in enumerate(keys) if k not in self.memo]
        if missing:
            out = self.teacher(x[missing])
            for i, row in zip(missing, out):
                self.memo[keys[i]] = row
        return torch.stack([self.memo[k] for k in keys])


def recipe_of(cfg, kind: str, steps: int, overrides: dict) -> dict:
    """What a stand-alone / fine-tuning result depends on (a stored result is reused only if
    equal). A ``ce`` job trains on the labels alone, so the distillation options are not part of it."""
    names = RECIPE_FIELDS if kind != "ce" else tuple(f for f in RECIPE_FIELDS if f not in KD_FIELDS)
    fields = {k: v for k, v in asdict(cfg).items() if k in names}
    return {"kind": kind, "steps": steps, "overrides": overrides, "train": {**fields, **overrides}}


KD_FIELDS = ("kd", "alpha_min", "alpha_max", "alpha_clamp")
RECIPE_FIELDS = ("data", "samples", "val_fraction", "variant", "batch_size", "optimizer", "lr", "momentum",
                 "weight_decay", "warmup_steps", "label_smoothing", *KD_FIELDS, "grad_clip", "grad_clip_value",
                 "seed")


@functools.lru_cache(maxsize=16)
def weights_digest(checkpoint: str) -> str:
    """SHA-256 (first 16 hex digits) of a checkpoint's weights: a supernet retrained into the
    same folder gets new results, not the stored ones of its predecessor."""
    import hashlib
    digest = hashlib.sha256()
    with open(Path(checkpoint) / "weights.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def stored(path: Path, recipe: dict, arch) -> dict | None:
    """The stored result at ``path`` if it was made for ``arch`` with ``recipe``."""
    try:
        result = json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return result if result.get("recipe") == recipe and result.get("key") == arch.to_json() else None
