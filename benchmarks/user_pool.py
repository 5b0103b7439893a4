"""A user's pool of measured archs from a CSV of encoded dimensions and metric columns.

One row per arch. Dimension columns hold the choice of each position (integers, numbers or
strings, e.g. an operation index or name); metric columns hold measurements. The space is
built from the data: one dimension per column, its choices the distinct values in that
column (sorted), ``categorical`` by default (``ordered`` with ``kind="ordered"``).

    op0,op1,op2,op3,op4,op5,accuracy,latency
    3,0,1,4,2,2,0.912,1.43
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from supernet.core.arch import Arch, Dimension
from supernet.core.errors import SupernetError
from supernet.core.space import SearchSpace


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def load_user_pool(path: str | Path, metrics: list[str], dims: list[str] | None = None,
                   kind: str = "categorical") -> tuple[SearchSpace, list[Arch], dict[str, list[float]]]:
    """``(space, archs, {metric: values})`` from the CSV at ``path`` (see the module doc).

    ``dims`` defaults to every column that is not a metric. A row repeating an arch is refused.
    """
    if not Path(path).is_file():
        raise SupernetError(f"pool file {str(path)!r} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [m for m in metrics if m not in columns]
    if missing:
        raise SupernetError(f"{str(path)!r} lacks metric column {missing[0]!r}; its columns are {columns}")
    dims = dims or [c for c in columns if c not in metrics]
    if not dims or not rows:
        raise SupernetError(f"{str(path)!r} needs at least one dimension column and one row")
    values = [{d: _value(r[d]) for d in dims} for r in rows]
    choices = {d: sorted({v[d] for v in values}, key=lambda x: (isinstance(x, str), x)) for d in dims}
    space = SearchSpace([Dimension(d, tuple(choices[d]), kind=kind) for d in dims])
    space.name = f"pool:{Path(path).name}"
    archs = [space.make(v) for v in values]
    if len(set(archs)) != len(archs):
        raise SupernetError(f"{str(path)!r} lists an arch twice; keep one row per arch (e.g. the mean)")
    out = {}
    for m in metrics:
        try:
            out[m] = [float(r[m]) for r in rows]
        except ValueError:
            raise SupernetError(f"{str(path)!r}: column {m!r} holds a value that is not a number") from None
        if not all(math.isfinite(v) for v in out[m]):
            raise SupernetError(f"{str(path)!r}: column {m!r} holds NaN or infinity; drop those rows")
    return space, archs, out
