"""Tasks: what a supernet is trained and scored on.

A task owns three things, and nothing else in the engine assumes image classification:

- ``loss(outputs, targets)``: the loss on labels of the arch trained on them (the largest);
- ``distill(student, teacher)``: ``(loss, divergence)`` of in-place distillation over the
  last axis of the outputs (``(B, C)`` class logits or ``(B, T, V)`` token logits), in fp32;
- ``score_terms(outputs, targets) -> (total, count)`` summed over batches, and
  ``score(total, count)``: the reported score (``score_name``; ``higher_is_better``).

A space names its task kind (``register_space(..., task="classification")``); training
options (label smoothing, distillation and its alphas) parameterise it: :func:`make_task`, or
:func:`task_of_run` for a saved run. The task owns the distillation settings: which divergence
(:data:`KD_KINDS`; ``none`` trains every arch on the labels), its alphas, and its schedule over
the steps (``kd="kl:0.3,alpha"``: KL for the first 30 % of the steps, then alpha). A trainer
asks ``task.at(step, total)`` for the task of each step; that task has one divergence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

import torch
import torch.nn.functional as F

from .errors import SupernetError
from .losses import distillation_loss


class Task(Protocol):
    kind: str
    score_name: str
    higher_is_better: bool

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def distill(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def at(self, step: int, total: int) -> "Task": ...

    def score_terms(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]: ...

    def score(self, total: float, count: int) -> float: ...


KD_KINDS = ("kl", "alpha", "none")
KD_SYNTAX = ("KIND or a schedule KIND:F,...,KIND (KIND for the steps before the fraction F of the run, then the "
             f"next; F increasing in (0, 1)), KIND in {list(KD_KINDS)}; e.g. kl, alpha, kl:0.3,alpha")


@lru_cache(maxsize=64)
def kd_phases(kd: str) -> tuple[tuple[str, float], ...]:
    """The phases of a ``--kd`` value: ``((kind, until), ...)``, ``until`` the fraction of the steps
    where the phase ends (1.0 for the last). ``"kl:0.3,alpha"`` -> ``(("kl", 0.3), ("alpha", 1.0))``."""
    parts = [p.strip() for p in str(kd).split(",")]
    phases, last = [], 0.0
    for i, part in enumerate(parts):
        kind, sep, until = (q.strip() for q in part.partition(":"))
        try:
            end = float(until) if sep else 1.0
        except ValueError:
            end = math.nan
        final = i == len(parts) - 1
        if kind not in KD_KINDS or (sep == "") != final or not last < end <= 1.0 or (end == 1.0) != final or \
                (phases and phases[-1][0] == kind):
            raise SupernetError(f"--kd must be {KD_SYNTAX}; got {kd!r}")
        phases.append((kind, end))
        last = end
    return tuple(phases)


def check_kd(kd: str) -> str:
    """``kd`` in its canonical spelling if it names a distillation (:data:`KD_KINDS`) or a
    schedule of them (:func:`kd_phases`), else a one-line error."""
    phases = kd_phases(kd)
    return ",".join(kind if until == 1.0 else f"{kind}:{until:g}" for kind, until in phases)


def phase_starts(kd: str, total: int) -> list[int]:
    """First step of each phase of ``kd`` in a run of ``total`` steps: phase ``k`` runs steps
    ``S_k .. S_{k+1} - 1`` with ``S_0 = 0`` and ``S_k = floor(until_{k-1} * total + 1/2)``."""
    return [0] + [int(until * total + 0.5) for _, until in kd_phases(kd)[:-1]]


@dataclass(frozen=True)
class Distiller:
    """How students learn from the teacher: KL (``kd="kl"``), AlphaNet's adaptive alpha-divergence
    (``kd="alpha"``), last axis, fp32; or not at all (``kd="none"``: every arch on the labels); or a
    schedule of these over the steps (``kd="kl:0.3,alpha"``), resolved per step by :meth:`at`."""

    kd: str = "kl"
    alpha_min: float = -1.0
    alpha_max: float = 1.0
    alpha_clamp: float = 5.0

    def __post_init__(self):
        check_kd(self.kd)

    def at(self, step: int, total: int) -> "Distiller":
        """This task as it distils at step ``step`` (0-based) of ``total``: itself for one divergence,
        else a copy whose ``kd`` is the phase's (:func:`phase_starts`). A pure function of the step,
        so a resumed run switches exactly where an uninterrupted one does."""
        phases = kd_phases(self.kd)
        if len(phases) == 1:
            return self
        k = sum(step >= s for s in phase_starts(self.kd, total)) - 1
        return replace(self, kd=phases[k][0])

    @property
    def labels_only(self) -> bool:
        """True when no arch distils: each learns from the labels."""
        return self._kind() == "none"

    def distill(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return distillation_loss(self._kind(), student, teacher, self.alpha_min, self.alpha_max, self.alpha_clamp)

    def _kind(self) -> str:
        phases = kd_phases(self.kd)
        if len(phases) > 1:
            raise ValueError(f"kd schedule {self.kd!r} depends on the step: use task.at(step, total)")
        return phases[0][0]


@dataclass(frozen=True)
class ClassificationTask(Distiller):
    """Logits ``(B, C)``, labels ``(B,)``. Loss: cross-entropy with label smoothing ``s``,
    ``(1 - s) CE(y) + s mean_c CE(c)``. Score: top-1 accuracy = correct / examples."""

    label_smoothing: float = 0.0
    kind: str = "classification"
    score_name: str = "accuracy"
    higher_is_better: bool = True

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), targets, label_smoothing=self.label_smoothing)

    def score_terms(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
        return float((outputs.argmax(-1) == targets).sum()), int(targets.numel())

    def score(self, total: float, count: int) -> float:
        return total / max(1, count)


@dataclass(frozen=True)
class LanguageModelTask(Distiller):
    """Next-token logits ``(B, T, V)`` and target ids ``(B, T)`` (``-100`` = ignored).

    Loss: mean token cross-entropy. Score: ``loss`` (lower is better), the mean over every
    scored token of the split; perplexity is ``exp(loss)``. Distillation runs per token.
    """

    label_smoothing: float = 0.0
    kind: str = "language_model"
    score_name: str = "loss"
    higher_is_better: bool = False

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.float().flatten(0, -2), targets.flatten(), ignore_index=-100,
                               label_smoothing=self.label_smoothing)

    def score_terms(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
        total = F.cross_entropy(outputs.float().flatten(0, -2), targets.flatten(), ignore_index=-100,
                                reduction="sum")
        return float(total), int((targets != -100).sum())

    def score(self, total: float, count: int) -> float:
        return total / max(1, count)

    @staticmethod
    def perplexity(loss: float) -> float:
        return math.exp(min(loss, 700.0))


TASKS = {"classification": ClassificationTask, "language_model": LanguageModelTask}


def make_task(kind: str, *, label_smoothing: float = 0.0, kd: str = "kl", alpha_min: float = -1.0,
              alpha_max: float = 1.0, alpha_clamp: float = 5.0) -> Task:
    """The task of kind ``kind`` with the training options that shape its losses."""
    if kind not in TASKS:
        raise SupernetError(f"unknown task {kind!r}; known tasks are {sorted(TASKS)}")
    return TASKS[kind](kd=kd, alpha_min=alpha_min, alpha_max=alpha_max, alpha_clamp=alpha_clamp,
                       label_smoothing=label_smoothing)


def task_of_run(meta: dict, kd: str | None = None) -> Task:
    """The task a checkpoint was trained on: its space's kind and its saved training options;
    with ``kd``, that distillation instead of the run's (fine-tuning chooses its own)."""
    from .registry import get_space
    options = meta["train"]
    return make_task(meta.get("task") or get_space(meta["space"]).task,
                     label_smoothing=options.get("label_smoothing", 0.0), kd=kd or options.get("kd", "kl"),
                     alpha_min=options.get("alpha_min", -1.0), alpha_max=options.get("alpha_max", 1.0),
                     alpha_clamp=options.get("alpha_clamp", 5.0))
