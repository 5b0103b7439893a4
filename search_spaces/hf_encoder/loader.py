"""Load an encoder subnet exported by `supernet export` (needs torch, transformers, safetensors only).

This file is copied into every export's ``hf/`` folder as ``load_subnet.py``; it imports nothing
from the supernet project. A subnet whose config stock transformers can express (uniform MLP width;
all heads kept, or for ViT/DeiT a uniform head count via ``head_dim``) is a plain Hugging Face
model: ``AutoModelFor...from_pretrained`` loads it. Otherwise its ``config.json`` records the
per-layer values (``subnet_num_heads``, ``subnet_intermediate_sizes``, and ``subnet_hidden_size`` for a
text model (BERT and kin) of a smaller hidden size) and the module paths (``subnet_layout``); the model is built at
the largest sizes, each layer's projections are resized to its own (and every module on the residual
stream to the hidden size), and the weights are loaded::

    from load_subnet import load_subnet
    model = load_subnet("exports/bert/hf")      # a ...ForSequenceClassification, eval mode
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from torch import nn

HEADS_KEY, WIDTHS_KEY, LAYOUT_KEY = "subnet_num_heads", "subnet_intermediate_sizes", "subnet_layout"
HIDDEN_KEY = "subnet_hidden_size"
IN_ROLES, OUT_ROLES = ("query", "key", "value", "fc1"), ("out", "fc2")  # hidden = a linear's input / output


def build_subnet_model(config) -> nn.Module:
    """A freshly initialised model of ``config`` (its ``architectures[0]`` class), fp32, each layer's attention
    and MLP resized to its recorded heads and width."""
    import transformers
    model = getattr(transformers, config.architectures[0])(config).float()
    layout = getattr(config, LAYOUT_KEY, None)
    if not layout:
        return model
    heads = getattr(config, HEADS_KEY, None) or [None] * config.num_hidden_layers
    widths = getattr(config, WIDTHS_KEY, None) or [None] * config.num_hidden_layers
    for layer, h, w in zip(model.get_submodule(layout["layers"]), heads, widths):
        if h is not None:
            for role in ("query", "key", "value"):
                _resize(layer, layout[role], out=h * layout["head_dim"])
            _resize(layer, layout["out"], inp=h * layout["head_dim"])
        if w is not None:
            _resize(layer, layout["fc1"], out=w)
            _resize(layer, layout["fc2"], inp=w)
    hidden = getattr(config, HIDDEN_KEY, None)
    if hidden is not None:
        _narrow_residual(model, layout, hidden)
    return model


def _narrow_residual(model: nn.Module, layout: dict, size: int) -> None:
    """Every module on the residual stream resized to ``size`` channels: the layers' q, k, v, fc1 inputs and o,
    fc2 outputs; outside the layers, what has the hidden size's width: LayerNorms, embedding tables, linears'
    inputs and (but the classifier's) outputs, convolutions' outputs, parameters' last axes."""
    full, layers = model.config.hidden_size, layout["layers"]
    roles = {path: role for role, path in layout.items() if role in IN_ROLES + OUT_ROLES}
    for name, module in list(model.named_modules()):
        inside = name.startswith(layers + ".")
        role = roles.get(name.split(".", len(layers.split(".")) + 1)[-1]) if inside else None
        if isinstance(module, nn.LayerNorm) and module.normalized_shape[-1] == full:
            new = nn.LayerNorm(size, eps=module.eps, elementwise_affine=module.weight is not None,
                               bias=module.bias is not None)
        elif isinstance(module, nn.Embedding) and module.embedding_dim == full:
            new = nn.Embedding(module.num_embeddings, size, padding_idx=module.padding_idx)
        elif isinstance(module, nn.Linear):
            outside_out = not inside and name != layout["classifier"] and module.out_features == full
            out = size if role in OUT_ROLES or outside_out else None
            inp = size if role in IN_ROLES or (not inside and module.in_features == full) else None
            new = nn.Linear(inp or module.in_features, out or module.out_features, bias=module.bias is not None)
        elif isinstance(module, nn.Conv2d) and not inside and module.out_channels == full:
            new = nn.Conv2d(module.in_channels, size, module.kernel_size, module.stride, module.padding,
                            bias=module.bias is not None)
        else:
            for p, param in list(module.named_parameters(recurse=False)):
                if param.shape[-1] == full:
                    setattr(module, p, nn.Parameter(param.detach()[..., :size].clone()))
            continue
        owner, _, attr = name.rpartition(".")
        setattr(model.get_submodule(owner) if owner else model, attr, new)


def _resize(layer: nn.Module, path: str, out: int | None = None, inp: int | None = None) -> None:
    owner, _, name = path.rpartition(".")
    parent = layer.get_submodule(owner) if owner else layer
    old = getattr(parent, name)
    setattr(parent, name, nn.Linear(inp or old.in_features, out or old.out_features, bias=old.bias is not None))


def load_subnet(folder: str | os.PathLike) -> nn.Module:
    """The subnet saved in ``folder`` (eval mode, fp32), per-layer heads and widths included."""
    import transformers
    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text())
    if not raw.get(LAYOUT_KEY):
        return getattr(transformers, raw["architectures"][0]).from_pretrained(folder).eval()
    from safetensors.torch import load_file
    model = build_subnet_model(transformers.AutoConfig.from_pretrained(folder))
    expected, seen = set(model.state_dict()), set()
    for shard in sorted(folder.glob("*.safetensors")):
        state = load_file(str(shard))
        model.load_state_dict(state, strict=False)
        seen |= set(state)
    if seen != expected:
        raise ValueError(f"{folder}: weights missing {sorted(expected - seen)[:3]}, unexpected {sorted(seen - expected)[:3]}")
    return model.eval()
