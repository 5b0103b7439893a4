"""Per-device latency lookup tables (OFA style) and the whole-subnet measurements that
correct them.

A table file ``<dir>/<target>-<fingerprint id>.json`` holds, for one space variant on
one device profile: the latency of every unit (stem, each block configuration at each
input size, head) measured in isolation, the number of kernels each unit launches
(:mod:`supernet.hardware.kernels`), measured latencies of whole extracted subnets, and a
**reference arch** (the space's median arch) measured in ``REFERENCE_ROUNDS`` rounds when the
table was finished: re-measured when a search starts, it tells whether the machine is as fast
now as when the table was built (:mod:`supernet.hardware.drift`). The table estimate of an arch
is the sum of its units; the learned correction (:class:`predictors.latency.TableLatencyPredictor`)
is fitted on the whole-subnet data. Building is resumable: the file is rewritten atomically
after every chunk of measurements.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..core.arch import Arch
from ..core.contract import hook
from ..core.errors import SupernetError
from ..core.space import SearchSpace
from ..io.files import atomic_write_json, read_json
from .kernels import count_kernels
from .rounds import ADDED_LATER, MeasureConfig, fingerprint, fingerprint_id, latency_ms, measure_many, measure_subnets
from .timers import Timer

FORMAT = "supernet-latency-table/1"
REFERENCE_ROUNDS = 7  # rounds of the reference arch, at build time and again when a search starts


def _units_of(space: SearchSpace):
    if not hook(space, "all_latency_units")():
        raise SupernetError(f"space {space.name!r} does not define latency units; latency tables need them")
    return hook(space, "latency_units")


def unit_sum(units: dict[str, float], space: SearchSpace, arch: Arch) -> float:
    """Table-only latency: the sum of the arch's unit latencies (ms)."""
    try:
        return float(sum(units[key] for key, _, _ in _units_of(space)(arch)))
    except KeyError as exc:
        raise SupernetError(f"latency table lacks unit {exc.args[0]!r}; rebuild it with `supernet latency "
                            "build` for this space variant") from None


def table_path(folder: str | Path, cfg: MeasureConfig, space: str | None = None, variant: str | None = None,
               space_config: dict | None = None) -> Path:
    """``<folder>/<target>-<space>-<variant>-<config hash>-<device profile>.json``: one file per space variant
    (two configs of one variant, e.g. fitted to other data, differ in the hash) and device profile;
    ``<target>-<device profile>.json`` without a space."""
    profile = fingerprint_id(fingerprint(cfg))
    if space is None:
        return Path(folder) / f"{cfg.target}-{profile}.json"
    digest = hashlib.sha1(json.dumps(space_config or {}, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return Path(folder) / f"{cfg.target}-{space}-{variant or 'custom'}-{digest}-{profile}.json"


class LatencyTable:
    """Unit latencies (ms) plus whole-subnet measurements for one space on one device."""

    def __init__(self, space_name: str, space_config: dict, cfg: MeasureConfig, units: dict | None = None,
                 archs: list | None = None, fp: dict | None = None, kernels: dict | None = None,
                 reference: dict | None = None):
        self.space_name, self.space_config, self.cfg = space_name, space_config, cfg
        self.fingerprint = fp or fingerprint(cfg)
        self.units: dict[str, float] = dict(units or {})
        self.kernels: dict[str, int] = dict(kernels or {})  # unit key -> kernels one forward launches
        self.archs: list[dict] = list(archs or [])  # {"arch": {...}, "latency_ms": ..., "median_ms": ..., ...}
        self.reference: dict | None = reference  # {"arch": {...}, "latency_ms", "spread_ms", "round_ms", "time"}

    def arch_sum(self, space: SearchSpace, arch: Arch) -> float:
        return unit_sum(self.units, space, arch)

    def measured(self, space: SearchSpace) -> tuple[list[Arch], np.ndarray]:
        return [space.make(r["arch"]) for r in self.archs], np.array([latency_ms(r) for r in self.archs])

    def to_dict(self) -> dict:
        return {"format": FORMAT, "space": self.space_name, "space_config": self.space_config,
                "measure": asdict(self.cfg), "fingerprint": self.fingerprint, "units": self.units,
                "kernels": self.kernels, "archs": self.archs, "reference": self.reference}

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, check_device: bool = True) -> "LatencyTable":
        """Load a table; refuse it when it was measured on another device profile."""
        data = read_json(path, "latency table")
        if data.get("format") != FORMAT:
            raise SupernetError(f"{str(path)!r} is not a latency table (build one with `supernet latency build`)")
        cfg = MeasureConfig(**{"statistic": "median", **data["measure"]})  # stored before the statistic existed
        if check_device:
            here = fingerprint(cfg)
            stored = data["fingerprint"]
            diff = sorted(k for k in set(here) | set(stored) if here.get(k) != stored.get(k)
                          and not (k in ADDED_LATER and k not in stored))
            if diff:
                k = diff[0]
                raise SupernetError(f"latency table {str(path)!r} was measured on another device profile ({k}: "
                                    f"{stored.get(k)!r}, here {here.get(k)!r}); build one here with "
                                    "`supernet latency build`")
        return cls(data["space"], data["space_config"], cfg, data["units"], data["archs"], data["fingerprint"],
                   data.get("kernels"), data.get("reference"))


def build_table(table: LatencyTable, space: SearchSpace, path: Path, n_archs: int, seed: int = 0,
                progress: bool = True, chunk: int = 200, timer: Timer | None = None) -> LatencyTable:
    """Count every unit's kernels, measure every missing unit, then whole subnets of ``n_archs``
    seeded random archs, then the reference arch (:func:`measure_reference`) when the table has none.

    Work goes in chunks of ``chunk`` units (``cfg.unit_rounds`` interleaved rounds; one
    block's timing depends on where its buffers land, so it needs more rounds than a whole
    net, whose blocks average that out) or ``chunk // 8`` archs (``cfg.rounds`` rounds), see
    :func:`supernet.hardware.rounds.measure_many`. Each chunk is saved atomically, so an
    interrupted build resumes after its last finished chunk. The extracted subnets are
    built fresh (latency does not depend on weight values) with ``space.build_static``.
    ``timer`` replaces the target's clock (:func:`supernet.hardware.rounds.measure`).
    """
    _units_of(space)  # a space without units: one clear error
    count_unit_kernels(table, space, table.cfg.batch)
    todo = [u for u in hook(space, "all_latency_units")() if u[0] not in table.units]
    rng = np.random.default_rng([seed, 9176])
    archs = [space.sample(rng) for _ in range(n_archs)]
    done = {space.make(r["arch"]) for r in table.archs}
    archs = [a for a in dict.fromkeys(archs) if a not in done][:max(0, n_archs - len(table.archs))]
    bar = tqdm(total=len(todo) + len(archs), desc="latency", unit="net", disable=not progress or None)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        jobs = [(b, s) for _, b, s in part]
        for (key, _, _), result in zip(part, measure_many(jobs, table.cfg, seed=start, rounds=table.cfg.unit_rounds,
                                                          timer=timer)):
            table.units[key] = latency_ms(result)
        table.save(path)
        bar.update(len(part))
    step = max(1, chunk // 8)
    for start in range(0, len(archs), step):
        part = archs[start:start + step]
        for arch, result in zip(part, measure_subnets(space, part, table.cfg, timer=timer)):
            table.archs.append({"arch": arch.to_dict(), **result})
        table.save(path)
        bar.update(len(part))
    if table.reference is None:
        table.reference = measure_reference(table, space, timer=timer)
    table.save(path)
    bar.close()
    return table


def count_unit_kernels(table: LatencyTable, space: SearchSpace, batch: int = 1) -> dict[str, int]:
    """Fill ``table.kernels`` for every unit it lacks (a count on the CPU, no timing); returns it."""
    for key, build, shape in hook(space, "all_latency_units")():
        if key not in table.kernels:
            table.kernels[key] = count_kernels(build(), torch.zeros((batch,) + tuple(shape)))
    return table.kernels


def measure_reference(table: LatencyTable, space: SearchSpace, measure=None, timer: Timer | None = None) -> dict:
    """The reference arch (the space's median arch) measured in ``REFERENCE_ROUNDS`` rounds on the
    table's target, with its round medians, their spread and the time: ``measure`` (default
    :func:`measure_subnets` here) may run it elsewhere (a Ray node of the target)."""
    arch, cfg = space.median(), replace(table.cfg, rounds=REFERENCE_ROUNDS)
    if measure is None:
        result = measure_subnets(space, [arch], cfg, timer=timer)[0]
    else:
        result = measure(space, [arch], cfg)[0]
    return {"arch": arch.to_dict(), **result, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
