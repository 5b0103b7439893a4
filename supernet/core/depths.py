"""Depth gating declared by a space: which positions of a dimension a depth leaves unused.

``active_by = {gated: depth}`` names, for a dimension ``gated`` of length ``L``, the dimension
``depth`` (integer choices) that decides how many of its positions are used:

- ``depth`` a single value ``d``: positions ``i >= d`` of ``gated`` are inactive;
- ``depth`` a list of ``S`` values (one per stage): ``gated`` is split into ``S`` equal segments of
  ``L / S`` positions, and positions ``j >= d[s]`` of segment ``s`` are inactive (OFA's rule:
  ``ks`` and ``e`` per block, ``d`` per stage).

Inactive positions are stored as the dimension's placeholder (0 or None), so two archs that
differ only there are one canonical arch: the search evaluates it once and predictors see it
once. Spaces with another rule override :meth:`SearchSpace.inactive` instead.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .arch import Dimension
from .errors import SupernetError


def check_active_by(dims: Sequence[Dimension], active_by: Mapping[str, str]) -> dict[str, str]:
    """``active_by`` checked against the dimensions; :class:`SupernetError` names the bad entry."""
    by_name = {d.name: d for d in dims}
    out = {}
    for gated, depth in dict(active_by).items():
        where = f"active_by[{gated!r}] = {depth!r}"
        if gated not in by_name or depth not in by_name:
            missing = gated if gated not in by_name else depth
            raise SupernetError(f"{where}: the space has no dimension {missing!r}; dimensions are {list(by_name)}")
        g, d = by_name[gated], by_name[depth]
        if gated == depth or depth in active_by:
            raise SupernetError(f"{where}: a depth dimension cannot itself be gated")
        if g.length is None:
            raise SupernetError(f"{where}: {gated!r} has a single value; only a list dimension (length=...) has "
                                "positions a depth can switch off")
        if not d.integer or min(d.choices) < 0:
            raise SupernetError(f"{where}: {depth!r} must have integer choices >= 0 (how many positions are used)")
        stages = d.positions
        if g.length % stages:
            raise SupernetError(f"{where}: {gated!r} has {g.length} positions, not a multiple of the {stages} "
                                f"values of {depth!r}")
        if max(d.choices) > g.length // stages:
            raise SupernetError(f"{where}: {depth!r} allows {max(d.choices)} but each of its segments of "
                                f"{gated!r} has {g.length // stages} positions")
        out[str(gated)] = str(depth)
    return out


def inactive_positions(dims: Sequence[Dimension], active_by: Mapping[str, str], values: Mapping) -> dict[str, set]:
    """Positions of each gated dimension that ``values`` does not use (see the module doc)."""
    by_name = {d.name: d for d in dims}
    out: dict[str, set[int]] = {}
    for gated, depth in active_by.items():
        raw = values.get(depth)
        depths = raw if isinstance(raw, (list, tuple)) else [raw]
        seg = by_name[gated].length // len(depths) if depths else 0
        off = set()
        for s, d in enumerate(depths):
            if isinstance(d, bool) or not isinstance(d, int) and not (isinstance(d, float) and d.is_integer()):
                return {}  # not a valid depth: the field check reports it
            off.update(s * seg + j for j in range(max(int(d), 0), seg))
        out[gated] = off
    return out


def gated_cardinality(dims: Sequence[Dimension], active_by: Mapping[str, str]) -> int:
    """Distinct canonical archs: per depth dimension and segment, ``sum_d (prod_g |choices_g|) ** d``."""
    gated_by: dict[str, list[Dimension]] = {}
    for d in dims:
        if d.name in active_by:
            gated_by.setdefault(active_by[d.name], []).append(d)
    total = 1
    for d in dims:
        if d.name in active_by:
            continue
        if d.name in gated_by:
            per_position = math.prod(len(g.choices) for g in gated_by[d.name])
            total *= sum(per_position ** k for k in d.choices) ** d.positions
        else:
            total *= len(d.choices) ** d.positions
    return total
