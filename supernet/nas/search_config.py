"""The options of a search (:class:`SearchConfig`) and what it returns (:class:`SearchResult`).

Torch- and pymoo-free, so the CLI builds its parser without importing either.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

from ..core.errors import SupernetError
from .metrics import get_metric
from .plan import option_name
from .quantities import parse_quantity

STRATEGIES = ("predictor", "nsga2", "random")


MIN_FIT = 5  # real results needed before a predictor is fitted (random archs until then)


class SearchWarning(UserWarning):
    """Something the user should know about a finished search (e.g. no evaluated arch meets a budget)."""


@dataclass
class SearchConfig:
    """Everything that decides a search (saved, resolved, in the run's ``config.json``).

    ``objectives`` are metric names; your own metric carries its direction (``"energy:min"``).
    ``budgets`` maps a minimised metric to its maximum (numbers or ``"20M"``-style text).
    ``evaluations`` counts every real evaluation, baselines and failures included. A round evaluates
    ``max(per_round, floor(growth * done))`` archs (``done``: real evaluations so far), so a search of
    ``N`` cheap evaluations refits its predictors ``O(log N)`` times, not ``N / per_round``; once evaluations
    prove cheap (under 5 ms each: a table oracle), ``fast_growth`` replaces ``growth`` and rounds double, a
    quarter of each climbs from the real front through its neighbours, NSGA-II runs generations in
    proportion to the round's size and ``auto`` fits ridge until 2,000 results (:mod:`supernet.nas.pace`); ``cheap`` fixes that decision (None: measured on round 0; a search that
    must equal another whose evaluator runs at another speed, e.g. on Ray, fixes it). ``initial``
    random archs join the baselines in round 0 (default ``evaluations // 4`` within [5, 50]).
    ``predictor`` names the accuracy predictor (default ``auto``: picked per round by
    cross-validated Kendall tau). ``eval_timeout`` (seconds) turns a slow evaluation into a
    recorded failure; more than ``max_failures`` failures (default 20 % of ``evaluations``) stop
    the search with an error, every result kept. ``reference_point`` (one value per objective,
    natural units) fixes the hypervolume reference, so runs compare; default: from the baselines.
    ``latency_mode``: ``forward`` (one call on an example batch) or ``generate`` (for LLM subnets
    measured per evaluation: a ``prefill_tokens`` prompt then ``decode_tokens`` new tokens with the
    KV cache; :mod:`supernet.hardware.generation`).
    """

    objectives: tuple[str, ...] = ("accuracy", "flops")
    budgets: dict[str, float] = field(default_factory=dict)
    evaluations: int = 200
    initial: int | None = None
    per_round: int = 10
    growth: float = 0.1
    fast_growth: float = 1.0
    cheap: bool | None = None
    uncertain: int = 3
    generations: int = 60
    population: int = 50
    predictor: str = "auto"
    strategy: str = "predictor"
    seed: int = 0
    target: str | None = None
    eval_timeout: float | None = None
    max_failures: int | None = None
    reference_point: dict | None = None
    latency_mode: str = "forward"
    prefill_tokens: int = 128
    decode_tokens: int = 32

    def resolved(self) -> "SearchConfig":
        objectives = self.objectives.split(",") if isinstance(self.objectives, str) else self.objectives
        budgets = {n: parse_quantity(v, f"budget on {n}") for n, v in self.budgets.items()}
        initial = self.initial if self.initial is not None else min(50, max(5, self.evaluations // 4))
        failures = self.max_failures
        if failures is None and isinstance(self.evaluations, int):
            failures = max(1, self.evaluations // 5)
        return replace(self, objectives=tuple(o.strip() for o in objectives), budgets=budgets, initial=initial,
                       max_failures=failures)

    def check(self, names: Mapping[str, str] | None = None) -> None:
        """Raise :class:`SupernetError` for a mistake; ``names`` maps fields to the caller's option names."""
        for name in list(self.objectives) + list(self.budgets) + (["latency"] if self.target is not None else []):
            if name in self.budgets and any(o.partition(":")[0] == name for o in self.objectives):
                continue  # a budget on one of the objectives: checked with them
            get_metric(name)  # unknown or not yet available (latency) -> one clear error
        if self.strategy not in STRATEGIES:
            raise SupernetError(f"{option_name('strategy', names)} must be one of {list(STRATEGIES)}, got "
                                f"{self.strategy!r}")
        for key, low in (("evaluations", MIN_FIT), ("per_round", 1), ("generations", 1), ("population", 4),
                         ("initial", 0), ("uncertain", 0), ("max_failures", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SupernetError(f"{option_name(key, names)} must be an integer >= {low}, got {value!r}")
        for key in ("growth", "fast_growth"):
            growth = getattr(self, key)
            if isinstance(growth, bool) or not isinstance(growth, (int, float)) or not 0 <= growth <= 1:
                raise SupernetError(f"{option_name(key, names)} must be a number in [0, 1], got {growth!r}")
        if self.cheap is not None and not isinstance(self.cheap, bool):
            raise SupernetError(f"{option_name('cheap', names)} must be True, False or None, got {self.cheap!r}")
        if self.uncertain > self.per_round:
            raise SupernetError(f"{option_name('uncertain', names)} ({self.uncertain}) cannot exceed "
                                f"{option_name('per_round', names)} ({self.per_round})")
        if self.latency_mode not in ("forward", "generate"):
            raise SupernetError(f"{option_name('latency_mode', names)} must be forward or generate, got "
                                f"{self.latency_mode!r}")
        for key in ("prefill_tokens", "decode_tokens"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**6:
                raise SupernetError(f"{option_name(key, names)} must be a whole number in [1, 1000000], got {value!r}")
        given = [k for k in ("latency_mode", "prefill_tokens", "decode_tokens") if getattr(self, k) != DEFAULTS[k]]
        if given and self.target is None:
            raise SupernetError(f"{', '.join(option_name(k, names) for k in given)} set how latency is measured, but "
                                f"this search measures none without {option_name('target', names)}; add it (e.g. "
                                f"{option_name('target', names)} cpu, with a latency objective or budget) or drop them")
        timeout = self.eval_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not math.isfinite(timeout) or timeout <= 0):
            raise SupernetError(f"{option_name('eval_timeout', names)} must be a positive number of seconds, "
                                f"got {timeout!r}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "SearchConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "objectives" else v for k, v in data.items() if k in names})


DEFAULTS = {f.name: f.default for f in fields(SearchConfig)}


@dataclass
class SearchResult:
    """What a search found: every real evaluation (failures included, see ``status``) and the feasible front.

    Rows are flat dicts with ``arch`` as a dict. ``warnings`` holds what was also issued as
    :class:`SearchWarning` (e.g. no evaluated arch meets a budget on a measured metric).
    """

    run_dir: Path | None
    evaluations: list[dict]
    front: list[dict]
    hypervolume: float
    reference: dict | None
    picks: dict
    failures: int = 0
    warnings: list = field(default_factory=list)
    latency_check: dict | None = None  # the front measured for real: sessions, budget, drift (hardware.front)
    anchors: list = field(default_factory=list)  # named archs evaluated beside the picks (nas.anchors, --compare)
