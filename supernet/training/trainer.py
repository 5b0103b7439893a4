"""The trainer: device, precision, the step loop and its hooks. Distributed training wraps it.

One optimizer step (:meth:`Trainer.step`) runs the archs of that step (sandwich:
largest on the labels, then smallest and N random distilled from the largest's detached
outputs, or also on the labels with ``kd="none"``; uniform: one random arch on the labels),
accumulating gradients; then one
clipped optimizer step and one scheduler step. Under ``bf16``/``fp16`` the forward passes
run in autocast, the losses and divergences in fp32; ``fp16`` scales the loss with a
GradScaler (unscaled before clipping). Weights stay fp32.

Hooks see every step: ``after_step(trainer, done, record)`` after step ``done - 1``
finished (``done`` steps are complete), ``end(trainer, done)`` once the loop stops, and
``interrupted(trainer, done)`` when SIGINT / SIGTERM stopped it between two steps.
A wrapper (DDP) replaces :attr:`Trainer.net`, the module the forward passes go through, and
:attr:`Trainer.average`, which turns each rank's logged losses into their mean over ranks.

Two optional arguments serve subnet training (stand-alone, fine-tuning): ``plan(step) ->
archs`` replaces the sampling rule, and ``teacher(x) -> logits`` (an outside, frozen model)
makes every arch of the step distil from its outputs instead of the first arch's.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Callable, Iterator, Protocol, Sequence

import torch

from ..core.arch import Arch
from ..core.contract import hook
from ..core.errors import SupernetError
from ..core.placement import Placement
from ..core.signals import deferred_interrupts
from ..core.task import Task
from .sampling import SANDWICHES, Candidates, step_archs


class Hook(Protocol):
    def after_step(self, trainer: "Trainer", done: int, record: dict) -> None: ...
    def end(self, trainer: "Trainer", done: int) -> None: ...
    def interrupted(self, trainer: "Trainer", done: int) -> None: ...


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """No weight decay on biases and normalisation weights (1-D parameters); trainable parameters only."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then ``0.5 (1 + cos(pi t))``, t in [0, 1]."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def roles(sampling: str, n: int) -> list[str]:
    """Log names of a step's archs: largest, smallest, random1..; or uniform; or subnet (a plan's)."""
    if sampling == "plan":
        return ["subnet"] * n
    if sampling == "largest-random":
        return (["largest"] + [f"random{i}" for i in range(1, n)])[:n]
    if sampling not in SANDWICHES:
        return ["uniform"] * n
    return (["largest", "smallest"] + [f"random{i}" for i in range(1, n - 1)])[:n]


class Trainer:
    """Owns the model on its device, the task, optimizer, LR schedule, GradScaler and hooks.

    ``cfg`` carries the recipe (see :class:`supernet.training.train_config.TrainConfig`): sampling,
    num_random, distill_weight, warm_largest, seed, optimizer, lr, momentum, weight_decay,
    warmup_steps, grad_clip, grad_clip_value.
    """

    def __init__(self, model: torch.nn.Module, task: Task, cfg, placement: Placement, total_steps: int,
                 hooks: Sequence[Hook] = (), plan: Callable[[int], list[Arch]] | None = None,
                 teacher: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.model = placement.model(model)
        self.net = self.model
        self.task, self.cfg, self.placement, self.total_steps = task, cfg, placement, total_steps
        self.optimizer = make_optimizer(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.warmup_steps, total_steps))
        self.scaler = placement.grad_scaler()
        self.hooks = list(hooks)
        self.average = lambda values: values  # the mean over ranks under DDP (see supernet.distributed.train)
        self.plan, self.teacher = plan, teacher
        self._picks: dict[tuple[int, int], Arch] = {}  # worst-up: (step, slot) -> the candidate trained

    @property
    def space(self):
        return self.model.space

    def archs(self, step: int) -> list[Arch]:
        """The archs of step ``step``: the plan's, the largest alone during the ``warm_largest`` steps, else
        the sampling rule's."""
        if self.plan is not None:
            return self.plan(step)
        if step < self.cfg.warm_largest:
            return [self.space.largest()]
        return step_archs(self.space, self.cfg.sampling, self.cfg.num_random, self.cfg.seed, step,
                          cost=hook(self.model, "flops"), share=self.cfg.shared)

    def backward(self, x: torch.Tensor, y: torch.Tensor, archs: list[Arch], step: int, weight: float = 1.0,
                 last: bool = True) -> dict:
        """Forward/backward every arch of the step (gradients accumulate); the losses to log.

        The first arch learns from the labels; the others distil from its detached outputs
        (or learn from the labels too with ``kd="none"``; or all distil from ``self.teacher``),
        with the divergence the task names for this step (``task.at(step, total_steps)``), their
        losses weighted by ``cfg.distill_weight`` (the total: ``L_first + w sum_k L_k``).
        Logged for a distilled arch is its true divergence, not the surrogate's value. The
        losses are scaled by ``weight`` (``1 / micro-batches`` under gradient accumulation).
        Under DDP (:attr:`net` has ``no_sync``) every pass but the last of the step (``last``:
        this is the step's last micro-batch) only accumulates locally; the last one all-reduces
        the summed gradients once. The logged values go through :attr:`average` (the mean over
        ranks under DDP), so every rank checks the same numbers: a non-finite loss on any rank
        stops every rank at the same step.
        """
        record, teacher, students, checks = {}, self._teacher_outputs(x), [], []
        task = self.task.at(step, self.total_steps)  # the distillation of this step (a --kd schedule's phase)
        labels_only = task.labels_only
        sampling = "plan" if self.plan is not None else self.cfg.sampling
        members = [[arch, role] for arch, role in zip(archs, roles(sampling, len(archs)))]
        for i, (arch, role) in enumerate(members):
            if isinstance(arch, Candidates):  # worst-up: train the hardest of the slot's candidates
                arch = members[i][0] = self._hardest(arch, x, y, None if labels_only else teacher, (step, i), task)
            elif not isinstance(arch, Arch):
                raise TypeError(f"a step member is an Arch, or Candidates for worst-up; got {type(arch).__name__}")
            with self._accumulate_only(not last or i < len(members) - 1):
                with self.placement.autocast():
                    outputs = self.net(self.model.prepare_input(x, arch), arch)
                if teacher is None or labels_only:
                    loss = task.loss(outputs, y)
                    value, teacher = loss.detach(), outputs.detach()
                else:
                    loss, value = task.distill(outputs, teacher)
                    students.append(role)
                share = weight * (self.cfg.distill_weight if i > 0 and self.teacher is None else 1.0)
                scaled = loss * share if share != 1.0 else loss
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            checks += [value.detach().float().reshape(()), loss.detach().float().reshape(())]
        values = self.average(torch.stack(checks)).tolist()  # one host sync (and one all-reduce) per step
        for i, (arch, role) in enumerate(members):
            if not (math.isfinite(values[2 * i]) and math.isfinite(values[2 * i + 1])):
                raise SupernetError(f"loss is not finite at step {step} for arch {arch.to_json()}; "
                                    "lower --lr or set --grad-clip")
            record[f"loss/{role}"] = values[2 * i]
        if students:
            record["kd/mean_divergence"] = sum(record[f"loss/{r}"] for r in students) / len(students)
        return record

    def _hardest(self, candidates: Candidates, x: torch.Tensor, y: torch.Tensor, teacher, key, task) -> Arch:
        """worst-up: the candidate with the highest loss on this batch (its divergence from
        ``teacher``, or its label loss without one), from no-grad forwards. Picked on the step's
        first micro-batch and kept for the others; the losses are averaged over ranks first, so
        every rank trains the same arch."""
        if key not in self._picks:
            losses = []
            with torch.no_grad(), self.placement.autocast():
                for arch in candidates:
                    out = self.model(self.model.prepare_input(x, arch), arch)
                    loss = task.loss(out, y) if teacher is None else task.distill(out, teacher)[1]
                    losses.append(loss.detach().float().reshape(()))
            self._picks = {k: v for k, v in self._picks.items() if k[0] == key[0]}
            self._picks[key] = candidates[int(torch.argmax(self.average(torch.stack(losses))))]
        return self._picks[key]

    def _accumulate_only(self, accumulate: bool):
        """``net.no_sync()`` for a pass whose gradients only accumulate (DDP), else nothing."""
        no_sync = getattr(self.net, "no_sync", None)
        return no_sync() if accumulate and no_sync is not None else nullcontext()

    def _teacher_outputs(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.teacher is None:
            return None
        with torch.no_grad(), self.placement.autocast():
            return self.teacher(x).detach()

    def step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        """One optimizer step on batch ``(x, y)`` (host or device tensors) at step index ``step``."""
        x, y = self.placement.input(x), self.placement.target(y)
        self.optimizer.zero_grad(set_to_none=True)
        archs, parts = self.archs(step), max(1, self.cfg.grad_accum)
        chunks = list(zip(x.chunk(parts), y.chunk(parts)))  # gradient accumulation: micro-batches
        records = [self.backward(xs, ys, archs, step, 1.0 / len(chunks), last=k == len(chunks) - 1)
                   for k, (xs, ys) in enumerate(chunks)]
        record = {k: sum(r[k] for r in records) / len(records) for k in records[0]}
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.cfg.grad_clip_value > 0:  # AlphaNet's grad_clip_value: element-wise, first
            torch.nn.utils.clip_grad_value_(params, self.cfg.grad_clip_value)
        if self.cfg.grad_clip > 0:
            record["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip).item()
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return record

    def fit(self, batches: Iterator, start: int, stop: int | None = None) -> int:
        """Steps ``start .. stop - 1`` (default: to ``total_steps``) on ``batches``; returns the steps done.

        SIGINT / SIGTERM between steps call the hooks' ``interrupted`` and re-raise
        ``KeyboardInterrupt``; the step in flight is finished or discarded, never half-applied.
        """
        stop = self.total_steps if stop is None else stop
        done = start
        self.model.train()
        try:
            for step in range(start, stop):
                x, y = next(batches)
                record = self.step(x, y, step)
                with deferred_interrupts():  # a finished step is logged and checkpointed whole
                    done = step + 1
                    for hook in self.hooks:
                        hook.after_step(self, done, record)
        except KeyboardInterrupt:
            for hook in self.hooks:
                hook.interrupted(self, done)
            raise
        for hook in self.hooks:
            hook.end(self, done)
        return done

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Optimizer, scheduler, GradScaler and RNG states (tensors only: loads with weights_only=True)."""
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "torch_rng": torch.get_rng_state()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self.placement.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.placement.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        if self.placement.device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], self.placement.device)
