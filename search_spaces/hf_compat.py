"""Every touch point with transformers' internals, in one place (DESIGN.md: one compatibility module).

The spaces over Hugging Face models (``llm_lora``; the encoders next) use transformers' public API
(``AutoModel*``, ``AutoConfig``, ``AutoTokenizer``, ``save_pretrained``) directly; what they need
beyond it is here, with the versions it was tested on (:data:`TESTED`, the bound in setup.cfg).
``tests/spaces/test_hf_compat.py`` is the canary: each function below is checked against the
installed transformers, so an upgrade that moves one fails there first, by name.

This file imports only torch and transformers: merged LLM exports ship a copy beside
``load_subnet.py``.
"""
from __future__ import annotations

import inspect

from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer  # the layer transformers checkpoints

TESTED = ("5.0", "5.26")  # transformers >= TESTED[0], < TESTED[1]; keep setup.cfg's bound equal

__all__ = ["GradientCheckpointingLayer", "TESTED", "cache_keyword", "cache_of", "decoder_layers", "quiet_progress",
           "set_checkpointing"]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a causal LM (``model.model.layers`` in Llama, Mistral, Qwen2 and kin)."""
    return model.model.layers


def set_checkpointing(model: nn.Module, enable: bool, unit: type = GradientCheckpointingLayer) -> None:
    """Non-reentrant gradient checkpointing of ``model``'s layers through transformers, with ``unit``
    (a wrapper of each decoder layer) the checkpointed unit and the library layer inside it not again.
    transformers 5 names it ``activation_checkpointing_*``, earlier releases ``gradient_checkpointing_*``."""
    kwargs = {"use_reentrant": False}
    if enable and hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    elif enable:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        (getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable)()
    for layer in decoder_layers(model):
        if isinstance(layer, unit) and hasattr(layer, "layer"):
            layer.layer.gradient_checkpointing = False


def cache_keyword(model: nn.Module) -> str:
    """The forward's keyword for the KV cache: ``cache`` (transformers >= 5.x), else ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def cache_of(out):
    """The KV cache a forward returned (``out.cache``, else ``out.past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def quiet_progress() -> None:
    """No progress bars while loading weights (a run's own bar is the one the user reads)."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
