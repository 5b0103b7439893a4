"""Device, precision and threads: ``--device auto|cpu|cuda[:N]``, ``--precision fp32|bf16|fp16``,
``--threads N``.

Decided once: :meth:`Placement.make` checks and resolves the options into one immutable,
picklable value that every stage receives (Ray workers and actors too, through
:meth:`Placement.for_workers` and :meth:`Placement.bound`); nothing else reads the raw options.
Weights always stay fp32 (autocast computes in the lower precision; fp16 adds a
GradScaler). Inputs move to the device from pinned memory without blocking the host.

torch's CPU thread count is process-wide state; :func:`torch_threads` is the one place that sets
it, for the length of a ``with`` block, and restores it after (a run's ``placement.threads()``,
a latency clock's fixed count, a kernel count's single thread).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Iterator

import torch

from .errors import SupernetError
from .options import PRECISION_NAMES, THREADS, check_number

DTYPES = dict(zip(PRECISION_NAMES, (torch.float32, torch.bfloat16, torch.float16)))  # name -> torch dtype
PRECISIONS = {name: (None if name == "fp32" else dtype) for name, dtype in DTYPES.items()}  # autocast dtype


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``n`` inside the block and restored on exit (``None``: left as it is).

    The one caller of ``torch.set_num_threads`` in the engine and its spaces."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_threads(threads: int | None) -> int | None:
    """``--threads``: a whole number in :data:`~supernet.core.options.THREADS`, or None (torch's choice)."""
    if threads is not None:
        check_number("threads", threads, THREADS)
    return threads


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
    """Where and how a model computes: device, autocast precision, memory format, torch CPU threads
    (``cpu_threads``; None: torch's choice)."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    cpu_threads: int | None = None

    @classmethod
    def make(cls, device: str | None = "auto", precision: str = "fp32", channels_last: bool = False,
             threads: int | None = None) -> "Placement":
        """The placement of the options on this machine (``auto``: its first GPU, else the CPU)."""
        return cls(resolve_device(device), check_precision(precision), bool(channels_last), check_threads(threads))

    @classmethod
    def for_workers(cls, gpu: bool, precision: str = "fp32", channels_last: bool = False,
                    threads: int | None = None) -> "Placement":
        """A placement for Ray workers: ``cuda`` (each worker's own GPU, bound there with :meth:`bound`)
        or ``cpu``, ``threads`` torch threads each (default 1: a worker is given one CPU per thread);
        checked here, where no GPU need be visible."""
        return cls(torch.device("cuda" if gpu else "cpu"), check_precision(precision), bool(channels_last),
                   check_threads(threads) or 1)

    def bound(self, device: torch.device | str) -> "Placement":
        """This placement on ``device`` (a worker's own GPU); precision, memory format and threads unchanged."""
        return replace(self, device=torch.device(device))

    def threads(self):
        """A ``with`` block computing with this placement's torch CPU threads (:func:`torch_threads`)."""
        return torch_threads(self.cpu_threads)

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
