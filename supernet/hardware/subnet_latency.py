"""Latency measured on every evaluated subnet, for spaces without a latency table."""
from __future__ import annotations

from collections.abc import Mapping

from ..core.arch import Arch
from ..core.contract import results_of


class MeasuredLatency:
    """A callable evaluator ``arch -> metrics`` that adds the time of each evaluated arch's static subnet on
    ``target`` (``latency`` in ms) to the metrics of ``inner`` (a callable evaluator, or one with
    ``evaluate_many``: :class:`supernet.core.contract.EvaluatorProtocol`).

    For spaces without a latency table (e.g. ``llm_lora``, whose subnet is a merged Hugging Face
    model): the search predicts latency from these real measurements like any measured metric.
    Each result also holds ``latency_spread`` (the relative range of the arch's interleaved rounds:
    the same arch measured again), and in ``generate`` mode ``prefill_ms`` and ``decode_ms_per_token``.

    An explicit wrapper: it offers no ``evaluate_many`` (the search wraps it as any callable, with its
    timeout), so every arch the search evaluates through it is timed, whatever ``inner`` offers; of
    ``inner`` it exposes only what a search reads (:data:`FROM_INNER`).

    Every subnet is timed with ``threads`` torch threads: the search's ``--threads``, passed down by the
    front door (``supernet.api.search``), 2 when it gives none.
    """

    FROM_INNER = ("space", "folder", "calib_batches", "meta", "task", "costs")

    def __init__(self, inner, target: str, threads: int = 2, mode: str = "forward", prefill: int = 128,
                 decode: int = 32):
        from .rounds import MeasureConfig
        generate = mode == "generate"  # one call is a whole generation: fewer of them
        self.inner = inner
        self.cfg = MeasureConfig(target=target, threads=threads, mode=mode, prefill=prefill, decode=decode,
                                 warmup=1 if generate else 10, repeats=3 if generate else 50,
                                 min_seconds=0.0 if generate else 0.1)
        self.cfg.check()

    space = property(lambda self: self.inner.space, doc="the inner evaluator's space")
    folder = property(lambda self: self.inner.folder, doc="the inner evaluator's checkpoint folder")
    calib_batches = property(lambda self: self.inner.calib_batches, doc="the inner evaluator's calibration")
    meta = property(lambda self: self.inner.meta, doc="the inner evaluator's checkpoint config")
    task = property(lambda self: self.inner.task, doc="the inner evaluator's task")
    costs = property(lambda self: self.inner.costs, doc="the inner evaluator's exact costs")

    def __call__(self, arch: Arch) -> dict:
        from .rounds import latency_ms, measure_subnet
        metrics = self.inner(arch) if callable(self.inner) else next(results_of(self.inner, [arch]))
        if not isinstance(metrics, Mapping):
            return metrics  # the inner evaluator's failure, as it reported it
        timed = measure_subnet(self.inner.space, arch, self.cfg)
        extra = {k: timed[k] for k in ("prefill_ms", "decode_ms_per_token") if k in timed}
        return {**metrics, "latency": latency_ms(timed), "latency_spread": timed["spread"], **extra}
