"""The searchable metrics by name, with their direction; ``name:min`` / ``name:max`` declares a user's own."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import SupernetError


# -- metrics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A searchable quantity; ``unavailable`` (a message) blocks its use until it exists."""

    name: str
    maximise: bool
    label: str
    unavailable: str | None = None


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> None:
    """Add or replace a metric (e.g. a latency metric once latency tables exist)."""
    METRICS[metric.name] = metric


for _metric in (Metric("accuracy", True, "accuracy"), Metric("flops", False, "FLOPs (MACs)"),
                Metric("params", False, "parameters"), Metric("latency", False, "latency (ms)"),
                Metric("loss", False, "validation loss")):
    register_metric(_metric)


DIRECTIONS = {"min": False, "max": True}


def get_metric(name: str) -> Metric:
    """The metric named ``name``; ``"name:min"`` / ``"name:max"`` declares a user metric and its direction.

    A direction given for a registered metric must agree with it (``accuracy:max``).
    """
    base, _, direction = str(name).partition(":")
    base, direction = base.strip(), direction.strip()
    if direction and direction not in DIRECTIONS:
        raise SupernetError(f"objective {name!r}: the direction after ':' must be min or max, e.g. energy:min")
    if base not in METRICS:
        if direction:
            return Metric(base, DIRECTIONS[direction], base)
        raise SupernetError(f"unknown metric {base!r}; known metrics are {sorted(METRICS)}; for your own metric "
                            f"give its direction, e.g. {base}:min or {base}:max")
    metric = METRICS[base]
    if direction and DIRECTIONS[direction] != metric.maximise:
        raise SupernetError(f"{base} is {'maximised' if metric.maximise else 'minimised'}; drop ':{direction}' "
                            "or name your own metric differently")
    if metric.unavailable:
        raise SupernetError(metric.unavailable)
    return metric
