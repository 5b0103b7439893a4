"""Device and precision: ``--device auto|cpu|cuda[:N]``, ``--precision fp32|bf16|fp16``.

Decided once: :meth:`Placement.make` checks and resolves the options into one immutable,
picklable value that every stage receives (Ray workers and actors too, through
:meth:`Placement.for_workers` and :meth:`Placement.bound`); nothing else reads the raw options.
Weights always stay fp32 (autocast computes in the lower precision; fp16 adds a
GradScaler). Inputs move to the device from pinned memory without blocking the host.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import torch

from .errors import SupernetError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """``auto`` (or None): the first visible GPU, else the CPU; ``cpu``; ``cuda`` or ``cuda:N``."""
    spec = "auto" if spec is None else str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise SupernetError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise SupernetError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SupernetError(f"--device {spec} asks for a GPU but torch sees none; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SupernetError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise SupernetError(f"--precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


@dataclass(frozen=True)
class Placement:
    """Where and how a model computes: device, autocast precision, memory format."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False

    @classmethod
    def make(cls, device: str | None = "auto", precision: str = "fp32", channels_last: bool = False) -> "Placement":
        """The placement of the options on this machine (``auto``: its first GPU, else the CPU)."""
        return cls(resolve_device(device), check_precision(precision), bool(channels_last))

    @classmethod
    def for_workers(cls, gpu: bool, precision: str = "fp32", channels_last: bool = False) -> "Placement":
        """A placement for Ray workers: ``cuda`` (each worker's own GPU, bound there with :meth:`bound`)
        or ``cpu``; checked here, where no GPU need be visible."""
        return cls(torch.device("cuda" if gpu else "cpu"), check_precision(precision), bool(channels_last))

    def bound(self, device: torch.device | str) -> "Placement":
        """This placement on ``device`` (a worker's own GPU); precision and memory format unchanged."""
        return replace(self, device=torch.device(device))

    def autocast(self):
        """Autocast to the lower precision, or nothing for fp32."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A GradScaler for fp16 (bf16 and fp32 keep fp32's exponent range and need none)."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the device: pinned host memory and a non-blocking copy for CUDA."""
        if self.device.type == "cuda" and x.device.type == "cpu":
            if not x.is_pinned():
                x = x.pin_memory()
            x = x.to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def target(self, y: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda" and y.device.type == "cpu":
            return (y if y.is_pinned() else y.pin_memory()).to(self.device, non_blocking=True)
        return y.to(self.device)


CPU = Placement(torch.device("cpu"))
