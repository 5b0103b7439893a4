"""Latency as a language model's user sees it: a prompt of N tokens, then M new tokens with the KV cache.

A module that generates offers ``prefill(ids) -> state`` (the prompt ``(B, N)`` through the model,
filling its cache; the state holds the cache and the next token) and ``decode(state) -> state``
(one new token). One timed call is a whole generation: ``prefill`` once, then ``decode`` M times;
its time is the latency, and the prefill and per-token decode times are reported beside it:

    latency_ms = prefill_ms + M * decode_ms_per_token
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..core.contract import hook
from ..core.errors import SupernetError
from ..core.placement import torch_threads


def check_length(space, prefill: int, decode: int, names: tuple[str, str] = ("--prefill-tokens",
                                                                             "--decode-tokens")) -> None:
    """Refuse a generation longer than the space's subnets can hold: ``prefill + decode`` positions at most
    ``space.max_tokens()`` (an LLM's ``max_position_embeddings``)."""
    from ..core.contract import hook
    limit = hook(space, "max_tokens")()
    if limit is not None and prefill + decode > limit:
        raise SupernetError(f"{names[0]} {prefill} + {names[1]} {decode} = {prefill + decode} tokens is above the "
                            f"model's max_position_embeddings ({limit}); use {limit} tokens or fewer in all")


def prompt_ids(x: torch.Tensor, length: int) -> torch.Tensor:
    """A prompt of ``length`` tokens from example ids ``x (B, T)`` (repeated along T when ``T < length``)."""
    if x.is_floating_point() or x.dim() != 2:
        raise SupernetError("--latency-mode generate needs a space whose inputs are token ids (an LLM space)")
    reps = -(-length // x.shape[1])
    return x.repeat(1, reps)[:, :length]


def time_generation(module: torch.nn.Module, x: torch.Tensor, cfg) -> list[tuple[float, float]]:
    """``(prefill seconds, decode seconds)`` of ``cfg.repeats`` generations of ``cfg.decode`` tokens after a
    ``cfg.prefill``-token prompt (after ``cfg.warmup`` untimed ones), on ``cfg.target`` with ``cfg.threads``."""
    prefill, decode = hook(module, "prefill"), hook(module, "decode")
    if prefill is None or decode is None:
        raise SupernetError("--latency-mode generate needs subnets that generate (prefill and decode with a KV "
                            "cache: an LLM space's); time this space with --latency-mode forward")
    cuda = cfg.target == "cuda"
    module = module.cuda() if cuda else module
    ids = prompt_ids(x, cfg.prefill).to("cuda" if cuda else "cpu")
    with torch_threads(cfg.threads), torch.inference_mode():
        for _ in range(cfg.warmup):
            _generate(prefill, decode, ids, cfg.decode, cuda)
        return [_generate(prefill, decode, ids, cfg.decode, cuda) for _ in range(cfg.repeats)]


def generation_summary(runs: list[tuple[float, float]], decode: int, summarise) -> dict:
    """``summarise`` of the whole generations' times, plus median ``prefill_ms`` and ``decode_ms_per_token``."""
    result = summarise([p + d for p, d in runs])
    result["prefill_ms"] = float(np.median([p for p, _ in runs]) * 1e3)
    result["decode_ms_per_token"] = float(np.median([d for _, d in runs]) * 1e3 / decode)
    return result


def _generate(prefill, decode, ids: torch.Tensor, new_tokens: int, cuda: bool) -> tuple[float, float]:
    """``(prefill seconds, decode seconds)`` of one generation."""
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    state = prefill(ids)
    sync()
    middle = time.perf_counter()
    for _ in range(new_tokens):
        state = decode(state)
    sync()
    return middle - start, time.perf_counter() - middle
