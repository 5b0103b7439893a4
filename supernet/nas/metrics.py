"""The searchable metrics by name, with their direction and kind; ``name:min`` / ``name:max`` declares a user's own.

Every metric says whether it is a **quality** (what the picks maximise: accuracy, or a language
model's validation loss, minimised) or a **cost** (what budgets bound: FLOPs, parameters, latency).
A user's ``name:max`` is a quality and ``name:min`` a cost (``energy:min``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import SupernetError


# -- metrics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A searchable quantity; ``kind`` is ``quality`` or ``cost`` (default: a maximised metric is a quality,
    a minimised one a cost); ``unavailable`` (a message) blocks its use until it exists."""

    name: str
    maximise: bool
    label: str
    unavailable: str | None = None
    kind: str = ""

    def __post_init__(self):
        if not self.kind:
            object.__setattr__(self, "kind", "quality" if self.maximise else "cost")
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def quality(self) -> bool:
        return self.kind == "quality"


KINDS = ("quality", "cost")


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> None:
    """Add or replace a metric (e.g. a latency metric once latency tables exist)."""
    METRICS[metric.name] = metric


for _metric in (Metric("accuracy", True, "accuracy"), Metric("flops", False, "FLOPs (MACs)"),
                Metric("params", False, "parameters"), Metric("latency", False, "latency (ms)"),
                Metric("loss", False, "validation loss", kind="quality")):
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
