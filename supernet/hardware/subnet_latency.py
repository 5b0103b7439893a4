"""Latency measured on every evaluated subnet, for spaces without a latency table."""
from __future__ import annotations

from ..core.arch import Arch


class MeasuredLatency:
    """An evaluator that also times each evaluated arch's static subnet on ``target`` (``latency`` in ms).

    For spaces without a latency table (e.g. ``llm_lora``, whose subnet is a merged Hugging Face
    model): the search predicts latency from these real measurements like any measured metric.
    Each result also holds ``latency_spread`` (the relative range of the arch's interleaved rounds:
    the same arch measured again), and in ``generate`` mode ``prefill_ms`` and ``decode_ms_per_token``.
    Every subnet is timed with ``threads`` torch threads: the search's ``--threads``, passed down by the
    front door (``supernet.api.search``), 2 when it gives none.
    """

    def __init__(self, inner, target: str, threads: int = 2, mode: str = "forward", prefill: int = 128,
                 decode: int = 32):
        from .rounds import MeasureConfig
        generate = mode == "generate"  # one call is a whole generation: fewer of them
        self.inner = inner
        self.cfg = MeasureConfig(target=target, threads=threads, mode=mode, prefill=prefill, decode=decode,
                                 warmup=1 if generate else 10, repeats=3 if generate else 50,
                                 min_seconds=0.0 if generate else 0.1)
        self.cfg.check()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, arch: Arch) -> dict:
        from .rounds import measure_subnet
        timed = measure_subnet(self.inner.space, arch, self.cfg)
        extra = {k: timed[k] for k in ("prefill_ms", "decode_ms_per_token") if k in timed}
        return {**self.inner(arch), "latency": timed["median_ms"], "latency_spread": timed["spread"], **extra}
