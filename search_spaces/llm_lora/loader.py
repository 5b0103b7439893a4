"""Load a merged LLM subnet exported by `supernet export` (needs torch, transformers, safetensors only).

This file is copied into every merged export as ``load_subnet.py``; it imports nothing from
the supernet project but its transformers compatibility module, copied beside it as ``hf_compat.py``.
A subnet whose MLP widths are the same in every layer is a plain
Hugging Face model (``intermediate_size`` = that width): ``AutoModelForCausalLM.from_pretrained``
loads it directly. A subnet with per-layer widths records them in its ``config.json`` as
``subnet_intermediate_sizes``; Hugging Face models have one ``intermediate_size``, so the
model is built at the largest width, each layer's MLP is resized to its own width, and the
weights are loaded::

    from load_subnet import load_subnet
    model = load_subnet("exports/llm/merged")          # an AutoModelForCausalLM, eval mode
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from torch import nn

try:  # inside the supernet project
    from search_spaces.hf_compat import cache_keyword, cache_of, decoder_layers
except ImportError:  # copied into an export as load_subnet.py, with hf_compat.py beside it
    from hf_compat import cache_keyword, cache_of, decoder_layers

WIDTHS_KEY = "subnet_intermediate_sizes"


def subnet_config(base_config, depth: int, widths: list[int]):
    """The Hugging Face config of a subnet: ``depth`` leading layers, MLP ``widths`` per layer."""
    config = copy.deepcopy(base_config)
    config.num_hidden_layers = depth
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:depth]
    config.intermediate_size = max(widths)
    if len(set(widths)) > 1:
        setattr(config, WIDTHS_KEY, list(widths))
    elif hasattr(config, WIDTHS_KEY):
        delattr(config, WIDTHS_KEY)
    return config


def build_subnet_model(config, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A freshly initialised model of ``config`` in ``dtype``, each layer's MLP at its recorded width."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    for layer, width in zip(decoder_layers(model), getattr(config, WIDTHS_KEY, None) or []):
        mlp = layer.mlp
        for name in ("gate_proj", "up_proj"):
            old = getattr(mlp, name)
            setattr(mlp, name, nn.Linear(old.in_features, width, bias=old.bias is not None, dtype=dtype))
        old = mlp.down_proj
        mlp.down_proj = nn.Linear(width, old.out_features, bias=old.bias is not None, dtype=dtype)
    return model


def load_subnet(folder: str | os.PathLike, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The merged subnet saved in ``folder`` (eval mode, ``dtype``), per-layer MLP widths included; the weight
    shards are loaded one at a time."""
    from transformers import AutoConfig, AutoModelForCausalLM
    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text())
    if not raw.get(WIDTHS_KEY):
        return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    from safetensors.torch import load_file
    model = build_subnet_model(AutoConfig.from_pretrained(folder), dtype)
    expected, seen = set(model.state_dict()), set()
    for shard in sorted(folder.glob("*.safetensors")):
        state = load_file(str(shard))
        model.load_state_dict(state, strict=False)
        seen |= set(state)
    if getattr(model.config, "tie_word_embeddings", False):
        seen.add("lm_head.weight")  # the same tensor as the embeddings
    if seen != expected:
        raise ValueError(f"{folder}: weights missing {sorted(expected - seen)[:3]}, unexpected {sorted(seen - expected)[:3]}")
    return model.eval()


class CausalLMLogits(nn.Module):
    """A Hugging Face causal LM as ``ids (B, T) -> logits (B, T, V)`` (no cache), and as a generator:
    ``prefill(ids)`` runs a prompt into a fresh KV cache, ``decode(state)`` adds one greedy token."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, use_cache=False).logits

    @torch.no_grad()
    def prefill(self, ids: torch.Tensor) -> tuple:
        """``(cache, next token (B, 1))`` after the prompt ``ids (B, N)``."""
        out = self.model(input_ids=ids, use_cache=True)
        return cache_of(out), out.logits[:, -1:].argmax(-1)

    @torch.no_grad()
    def decode(self, state: tuple) -> tuple:
        """One more token: ``(cache, token) -> (cache, next token)``."""
        cache, token = state
        out = self.model(input_ids=token, use_cache=True, **{cache_keyword(self.model): cache})
        return cache_of(out), out.logits[:, -1:].argmax(-1)
