"""Latency commands as Python functions: build a device table, measure one arch, find the table of
this device. The search's latency cost (the table corrected by a learned model) sits beside that model,
:func:`predictors.latency.latency_cost`."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import SupernetError
from ..core.registry import config_from_dict, config_to_dict, get_space, space_config
from ..io.checkpoint import resolve_checkpoint
from ..io.claim import claim, release
from ..io.files import read_json
from ..io.runs import check_writable, make_dir
from .generation import check_length
from .latency_table import LatencyTable, build_table, table_path
from .rounds import MeasureConfig, fingerprint, fingerprint_id, measure_subnet

DEFAULT_DIR = Path("latency")


def resolve_space(source: str, variant: str | None = None):
    """``(space name, variant, space)`` from a checkpoint / run folder, or from a registered space name."""
    if os.path.exists(source):
        meta = read_json(resolve_checkpoint(source) / "config.json", "checkpoint config")
        name, cfg = meta["space"], config_from_dict(meta["space"], meta["space_config"])
        variant = meta.get("variant")
    else:
        name, cfg = source, space_config(source, variant)
        variant = variant or get_space(name).default_variant
    return name, variant, get_space(name).build_space(cfg)


def build_latency(source: str, cfg: MeasureConfig | None = None, *, variant: str | None = None, archs: int = 60,
                  folder: str | os.PathLike = DEFAULT_DIR, seed: int = 0, progress: bool = True, timer=None) -> Path:
    """Measure the unit table, ``archs`` whole subnets and the reference arch on ``cfg.target``
    (default ``MeasureConfig()``: the cpu, 2 threads; ``timer``: a stand-in clock); resumable. Returns the file."""
    cfg = cfg or MeasureConfig()
    cfg.check()
    name, variant, space = resolve_space(source, variant)
    path = table_path(folder, cfg, name, variant, config_to_dict(space.config))
    check_writable(path.parent)
    make_dir(path.parent)
    claim(path.parent, "latency table folder", f".{path.name}.claim")  # one builder per table file
    try:
        table = LatencyTable(name, config_to_dict(space.config), cfg)
        if path.exists():
            table = LatencyTable.load(path)
            if table.space_config != config_to_dict(space.config):
                raise SupernetError(f"{str(path)!r} holds a table of another space variant; pass another --out folder")
        build_table(table, space, path, archs, seed, progress, timer=timer)
    finally:
        release(path.parent, f".{path.name}.claim")
    return path


def measure_arch(source: str, arch: str | dict, cfg: MeasureConfig | None = None, variant: str | None = None) -> dict:
    """Latency of one arch's extracted static subnet on ``cfg.target`` (default ``MeasureConfig()``: the cpu,
    2 threads), with the device fingerprint."""
    cfg = cfg or MeasureConfig()
    cfg.check()
    _, _, space = resolve_space(source, variant)
    if cfg.mode == "generate":
        check_length(space, cfg.prefill, cfg.decode)
    arch = space.load_arch(arch) if isinstance(arch, str) else space.make(arch)
    fp = fingerprint(cfg)
    result = measure_subnet(space, arch, cfg)
    return {"arch": arch.to_dict(), "target": cfg.target, **result, "fingerprint": fp, "profile": fingerprint_id(fp)}


def find_table(target: str, space, path: str | os.PathLike | None = None,
               folder: str | os.PathLike = DEFAULT_DIR) -> LatencyTable:
    """The table to use: ``path``, else the one in ``folder`` measured on this device for ``target`` and for
    this space variant (its config; the file names say both, :func:`table_path`)."""
    if path is None:
        candidates = sorted(Path(folder).glob(f"{target}-*.json"))
        here = [p for p in candidates if _matches_here(p)]
        if not here:
            raise SupernetError(f"no latency table for target {target!r} on this device in {str(folder)!r}; "
                                f"build one with `supernet latency build CHECKPOINT --target {target}`")
        mine = [p for p in here if LatencyTable.load(p).space_config == config_to_dict(space.config)]
        path = (mine or here)[0]
    table = LatencyTable.load(path)
    if table.cfg.target != target:
        raise SupernetError(f"latency table {str(path)!r} is for target {table.cfg.target!r}, not {target!r}")
    if table.space_config != config_to_dict(space.config):
        raise SupernetError(f"latency table {str(path)!r} was built for another space variant; build one for this one")
    if len(table.archs) < 5:
        raise SupernetError(f"latency table {str(path)!r} has {len(table.archs)} whole-subnet measurements; "
                            "finish it with `supernet latency build` (5 or more are needed)")
    return table


def _matches_here(path: Path) -> bool:
    try:
        LatencyTable.load(path)
        return True
    except SupernetError:
        return False
