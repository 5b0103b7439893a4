"""Latency measured on every evaluated subnet, for spaces without a latency table."""
from __future__ import annotations

from ..core.arch import Arch


class MeasuredLatency:
    """An evaluator that also times each evaluated arch's static subnet on ``target`` (``latency`` in ms).

    For spaces without a latency table (e.g. ``llm_lora``, whose subnet is a merged Hugging Face
    model): the search predicts latency from these real measurements like any measured metric.
    """

    def __init__(self, inner, target: str, threads: int = 2):
        from .measure import MeasureConfig
        self.inner, self.cfg = inner, MeasureConfig(target=target, threads=threads)
        self.cfg.check()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, arch: Arch) -> dict:
        from .measure import measure_subnet
        return {**self.inner(arch), "latency": measure_subnet(self.inner.space, arch, self.cfg)["median_ms"]}
