"""Latency units of the ``hf_encoder`` space: the pieces a lookup table times.

An arch's network is ``base -> layers``: the base is the model with no layer (embeddings, mask,
final norm, pooler, classifier: the same for every arch), and each kept layer costs what a
library layer at its head count and MLP width costs on ``T`` tokens, wherever it sits. So the
table holds ``1 + heads x widths`` units, each timed once in isolation:

    latency(arch) ~ base + sum over kept layers i of layer(h_i, w_i)

(the engine's table predictor then fits a correction on whole subnets measured for real). With an
elastic hidden size every unit exists once per hidden size: ``hiddens x (1 + heads x widths)``.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from ..hf_compat import encoder_layers, encoder_layout, encoder_subnet_config
from .config import HfEncoderConfig, hf_config
from .loader import build_subnet_model
from .static import EncoderClassifier

Unit = tuple[str, Callable[[], nn.Module], tuple[int, ...]]  # (key, build module, input shape without batch)


class TokenInput(nn.Module):
    """A text unit timed on random floats (what the table builder feeds): ``x -> ids = |x| * 7919 mod vocab``."""

    def __init__(self, net: nn.Module, vocab: int):
        super().__init__()
        self.net, self.vocab = net, vocab

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.remainder((x.abs() * 7919).long(), self.vocab))


class LayerUnit(nn.Module):
    """One library layer ``(B, T, hidden) -> (B, T, hidden)``, no mask."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, None)


def tokens(config: HfEncoderConfig) -> int:
    if config.kind == "text":
        return config.seq_len
    return (config.image_size // config.patch_size) ** 2 + (2 if config.model_type == "deit" else 1)


def _model(config: HfEncoderConfig, heads: list[int], widths: list[int], hidden: int) -> nn.Module:
    torch.manual_seed(0)
    hf = encoder_subnet_config(hf_config(config), encoder_layout(config.model_type), len(heads), heads,
                               widths or [config.intermediate_size], hidden)
    return build_subnet_model(hf).eval()


def _tag(config: HfEncoderConfig, hidden: int, before: str = "", after: str = "") -> str:
    """``d<hidden>`` (between ``before`` and ``after``) in a unit's key when the hidden size is elastic, else
    nothing (the keys of tables built before it was)."""
    return f"{before}d{hidden}{after}" if len(config.hiddens) > 1 else ""


def _base(config: HfEncoderConfig, hidden: int) -> Unit:
    c = config

    def build():
        net = EncoderClassifier(_model(c, [], [], hidden), c.kind, c.pad_id, c.interpolate)
        return TokenInput(net, c.vocab_size) if c.kind == "text" else net
    shape = (c.seq_len,) if c.kind == "text" else (c.channels, c.image_size, c.image_size)
    return f"base{_tag(c, hidden, before=':')}@{tokens(c)}", build, shape


def _layer(config: HfEncoderConfig, heads: int, width: int, hidden: int) -> Unit:
    c = config
    build = lambda: LayerUnit(encoder_layers(_model(c, [heads], [width], hidden), encoder_layout(c.model_type))[0])  # noqa
    return f"layer:{_tag(c, hidden, after='-')}h{heads}-w{width}@{tokens(c)}", build, (tokens(c), hidden)


def units(config: HfEncoderConfig, arch) -> list[Unit]:
    """The base and every kept layer of ``arch``, at its hidden size."""
    depth = arch["depth"] if config.max_skip else config.num_layers
    hidden = arch["hidden"] if len(config.hiddens) > 1 else config.hidden_size
    return [_base(config, hidden)] + [_layer(config, arch["heads"][i], arch["mlp_width"][i], hidden)
                                      for i in range(depth)]


def all_units(config: HfEncoderConfig) -> Iterator[Unit]:
    """The base and a layer at every (heads, width) choice, at every hidden size."""
    for d in config.hiddens:
        yield _base(config, d)
        for h in config.heads:
            for w in config.widths:
                yield _layer(config, h, w, d)
