"""A simulated machine for latency tests: a timer that drifts and spikes, and runs nothing.

``SimulatedTimer`` has the timer signature of :mod:`supernet.hardware.timers`. A module's true
time is ``overhead_ms + ms_per_mac * MACs`` (MACs of its convolutions and linear layers, counted
on one forward), times ``speed`` (set it to simulate a slower machine), times a slow drift
``1 + drift * rounds so far``; each call gets log-normal noise, ``spike_p`` of calls take
``spike`` times as long, and ``burst_p`` of rounds (one timer call) are ``burst`` times slower as
a whole (another tenant for a moment): the median of the calls keeps a burst, not a spike.
"""
from __future__ import annotations

import numpy as np
import torch


def macs(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the convolutions and linear layers of one forward of ``module`` on ``x``."""
    total = [0]

    def hook(layer, inputs, output):
        total[0] += layer.weight.numel() * (output.numel() // output.shape[1])
    layers = [m for m in module.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))]
    handles, threads = [m.register_forward_hook(hook) for m in layers], torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            module(x[:1])
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.remove()
    return total[0]


class SimulatedTimer:
    def __init__(self, seed: int = 0, speed: float = 1.0, noise: float = 0.01, drift: float = 0.0,
                 spike_p: float = 0.0, spike: float = 5.0, burst_p: float = 0.0, burst: float = 1.4,
                 overhead_ms: float = 0.01, ms_per_mac: float = 2e-6):
        self.rng = np.random.default_rng(seed)
        self.speed, self.noise, self.drift = speed, noise, drift
        self.spike_p, self.spike, self.burst_p, self.burst = spike_p, spike, burst_p, burst
        self.overhead_ms, self.ms_per_mac = overhead_ms, ms_per_mac
        self.rounds = 0

    def true_ms(self, module, x) -> float:
        return self.overhead_ms + self.ms_per_mac * macs(module, x)

    def __call__(self, module, x, cfg, onnx_path=None) -> list[float]:
        base = self.true_ms(module, x) * self.speed * (1 + self.drift * self.rounds)
        self.rounds += 1
        if self.rng.random() < self.burst_p:
            base *= self.burst
        n = cfg.repeats
        times = base * np.exp(self.rng.normal(0, self.noise, n))
        times[self.rng.random(n) < self.spike_p] *= self.spike
        return list(times / 1e3)
