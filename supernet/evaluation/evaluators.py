"""The evaluator seam: ``evaluate_many(archs) -> [metrics | Failure, ...]``, one result per arch, in order.

The search evaluates archs for real only through :meth:`evaluate_many`, so a parallel
evaluator (a process pool, Ray actors) plugs in without touching the search loop: give
``run_search`` any object with that method. A plain callable ``arch -> dict`` is wrapped
in :class:`LocalEvaluator`. A result is either a mapping of metrics or a :class:`Failure`;
an evaluator should never raise for one bad arch (if ``evaluate_many`` raises anyway,
every arch of that call is recorded as failed). ``KeyboardInterrupt`` is never caught.
"""
from __future__ import annotations

import signal
import threading
import traceback
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

from ..core.arch import Arch
from ..core.contract import EvaluatorProtocol

STATUSES = ("ok", "error", "timeout", "invalid")


@dataclass(frozen=True)
class Failure:
    """A failed evaluation: ``status`` (``error``, ``timeout`` or ``invalid``) and one line of error text."""

    status: str
    error: str


def describe(exc: BaseException) -> str:
    """``"ValueError: message"`` on one line, with the innermost frame of the evaluator's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].name}, line {frames[-1].lineno})" if frames else ""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").strip()
    return text[:500] + where


class _Timeout(Exception):
    pass


def call_with_timeout(fn: Callable, arch: Arch, seconds: float | None):
    """``fn(arch)``, or :class:`Failure` ``timeout`` after ``seconds``.

    In the main thread the call is interrupted by ``SIGALRM`` (it stops at its next Python
    instruction); elsewhere it runs in a daemon thread that is abandoned on timeout.
    """
    if seconds is None:
        return fn(arch)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def alarm(signum, frame):
            raise _Timeout
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(arch)
        except _Timeout:
            return Failure("timeout", f"no result within eval_timeout={seconds:g} s")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box: dict = {}

    def run():
        try:
            box["value"] = fn(arch)
        except Exception as exc:  # noqa: BLE001  (reported as the arch's failure)
            box["error"] = exc
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return Failure("timeout", f"no result within eval_timeout={seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class LocalEvaluator:
    """Wraps ``fn(arch) -> dict``: one arch after another in this process; exceptions become failures."""

    def __init__(self, fn: Callable[[Arch], Mapping[str, float]], timeout: float | None = None):
        self.fn, self.timeout = fn, timeout

    def evaluate_iter(self, archs: Sequence[Arch]) -> Iterator:
        """Results one by one as they finish (the search records each at once: an interrupt loses none)."""
        for arch in archs:
            try:
                yield call_with_timeout(self.fn, arch, self.timeout)
            except Exception as exc:  # noqa: BLE001  (a failed arch is data, not a crash)
                yield Failure("error", describe(exc))

    def evaluate_many(self, archs: Sequence[Arch]) -> list:
        return list(self.evaluate_iter(archs))


def as_evaluator(evaluator, timeout: float | None = None):
    """An :class:`supernet.core.contract.EvaluatorProtocol`: ``evaluator`` itself if it is one, else a
    :class:`LocalEvaluator` of the callable."""
    if isinstance(evaluator, EvaluatorProtocol):
        return evaluator
    if not callable(evaluator):
        from ..core.errors import SupernetError
        raise SupernetError("the evaluator must be a callable arch -> dict of metrics or have evaluate_many(archs)")
    return LocalEvaluator(evaluator, timeout)
