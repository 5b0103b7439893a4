"""Every touch point with transformers' internals, in one place (DESIGN.md: one compatibility module).

The spaces over Hugging Face models (``llm_lora``; ``hf_encoder``, its own section at the end) use transformers' public API
(``AutoModel*``, ``AutoConfig``, ``AutoTokenizer``, ``save_pretrained``) directly; what they need
beyond it is here, with the versions it was tested on (:data:`TESTED`, the bound in setup.cfg).
``tests/spaces/test_hf_compat.py`` is the canary: each function below is checked against the
installed transformers, so an upgrade that moves one fails there first, by name.

This file imports only torch and transformers: merged LLM exports ship a copy beside
``load_subnet.py``.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

TESTED = ("5.0", "5.26")  # transformers >= TESTED[0], < TESTED[1]; keep setup.cfg's bound equal

__all__ = ["TESTED", "cache_keyword", "cache_of", "decoder_layers", "quiet_progress",
           "set_checkpointing",
           # encoders (hf_encoder)
           "ENCODER_CLASSES", "ENCODER_LAYOUTS", "EncoderLayout", "encoder_checkpointing", "encoder_class",
           "encoder_head_dim", "encoder_layers", "encoder_layout", "encoder_load", "encoder_logits",
           "encoder_subnet_config"]


def __getattr__(name: str):
    """``GradientCheckpointingLayer`` (the layer transformers checkpoints), imported on first use: importing
    this module stays torch-free, so ``supernet train --help`` can list the spaces' options without torch."""
    if name == "GradientCheckpointingLayer":
        from transformers.modeling_layers import GradientCheckpointingLayer
        return GradientCheckpointingLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a causal LM (``model.model.layers`` in Llama, Mistral, Qwen2 and kin)."""
    return model.model.layers


def set_checkpointing(model: nn.Module, enable: bool, unit: type | None = None) -> None:
    """Non-reentrant gradient checkpointing of ``model``'s layers through transformers, with ``unit``
    (a wrapper of each decoder layer) the checkpointed unit and the library layer inside it not again.
    transformers 5 names it ``activation_checkpointing_*``, earlier releases ``gradient_checkpointing_*``."""
    unit = unit or __getattr__("GradientCheckpointingLayer")
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


# ==================================================================================================
# Encoders (hf_encoder). The space runs the library's own classification models; it relies on:
# - the module paths of each family (ENCODER_LAYOUTS): the list of layers, the attention projections
#   (q, k, v: heads x head_dim output rows; o: as many input columns), the MLP's two linears, the classifier;
# - the attention forward reshapes q/k/v with view(..., -1, head_dim), so fewer rows are fewer heads
#   (no count is stored that the forward reads);
# - unknown keywords of the model's forward reach every layer (subnet=), as in the decoders;
# - the layers are GradientCheckpointingLayers and the model has activation_checkpointing_enable (5.x);
# - ViT/DeiT read config.head_dim when set (a uniform head count is a stock config); BERT and RoBERTa
#   derive the head size from hidden_size / num_attention_heads (transformers 5 removed pruned_heads);
# - every norm on the residual stream is an nn.LayerNorm (a smaller hidden size slices them);
# - DistilBERT's config names its fields dim / n_layers / n_heads (attribute_map) and hidden_dim (the MLP);
# - ViT/DeiT take interpolate_pos_encoding=True for images of another size than the config's.
# tests/spaces/test_hf_compat_encoders.py is this section's canary.
# ==================================================================================================
import copy  # noqa: E402
from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True)
class EncoderLayout:
    """Where a family keeps its parts, relative to the classification model (dotted paths)."""

    kind: str  # "text" (token ids) or "image" (pixel values)
    architectures: tuple[str, ...]  # the classification classes handled
    layers: str  # the ModuleList of layers
    query: str
    key: str
    value: str
    out: str  # attention output projection (input columns = heads x head_dim)
    fc1: str  # MLP up (output rows = width)
    fc2: str  # MLP down (input columns = width)
    classifier: str  # the last linear (out_features = num_labels)
    head_dim_field: bool  # config.head_dim sets the head width (a uniform head count is a stock config)
    mlp_field: str = "intermediate_size"  # the config field of the MLP width (DistilBERT: hidden_dim)

    def projections(self) -> dict[str, str]:
        return {"query": self.query, "key": self.key, "value": self.value, "out": self.out, "fc1": self.fc1,
                "fc2": self.fc2}


_BERT = dict(kind="text", query="attention.self.query", key="attention.self.key", value="attention.self.value",
             out="attention.output.dense", fc1="intermediate.dense", fc2="output.dense", head_dim_field=False)
_VIT = dict(kind="image", query="attention.q_proj", key="attention.k_proj", value="attention.v_proj",
            out="attention.o_proj", fc1="mlp.fc1", fc2="mlp.fc2", classifier="classifier", head_dim_field=True)
_ROBERTA = dict(layers="roberta.encoder.layer", classifier="classifier.out_proj", **_BERT)
ENCODER_LAYOUTS = {
    "bert": EncoderLayout(architectures=("BertForSequenceClassification",), layers="bert.encoder.layer",
                          classifier="classifier", **_BERT),
    "roberta": EncoderLayout(architectures=("RobertaForSequenceClassification",), **_ROBERTA),
    "xlm-roberta": EncoderLayout(architectures=("XLMRobertaForSequenceClassification",), **_ROBERTA),
    "camembert": EncoderLayout(architectures=("CamembertForSequenceClassification",), **_ROBERTA),
    "electra": EncoderLayout(architectures=("ElectraForSequenceClassification",), layers="electra.encoder.layer",
                             classifier="classifier.out_proj", **_BERT),
    "distilbert": EncoderLayout(architectures=("DistilBertForSequenceClassification",), kind="text",
                                layers="distilbert.transformer.layer", query="attention.q_lin", key="attention.k_lin",
                                value="attention.v_lin", out="attention.out_lin", fc1="ffn.lin1", fc2="ffn.lin2",
                                classifier="classifier", head_dim_field=False, mlp_field="hidden_dim"),
    "vit": EncoderLayout(architectures=("ViTForImageClassification",), layers="vit.layers", **_VIT),
    "deit": EncoderLayout(architectures=("DeiTForImageClassification",), layers="deit.layers", **_VIT),
}
ENCODER_CLASSES = {a: t for t, layout in ENCODER_LAYOUTS.items() for a in layout.architectures}
HEADS_KEY, WIDTHS_KEY, LAYOUT_KEY = "subnet_num_heads", "subnet_intermediate_sizes", "subnet_layout"
HIDDEN_KEY = "subnet_hidden_size"


def encoder_layout(model_type: str) -> EncoderLayout:
    return ENCODER_LAYOUTS[model_type]


def encoder_head_dim(config) -> int:
    """Channels per attention head: ``config.head_dim`` (ViT/DeiT, when set), else ``hidden / heads``."""
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def encoder_class(architecture: str):
    """The transformers class of a handled architecture name (e.g. ``BertForSequenceClassification``)."""
    import transformers
    return getattr(transformers, architecture)


def encoder_layers(model, layout: EncoderLayout):
    """The ``nn.ModuleList`` of the model's layers."""
    return model.get_submodule(layout.layers)


def encoder_logits(model, x, kind: str, pad_id: int | None, interpolate: bool = False, **subnet):
    """Class logits ``(B, C)`` of a classification model: text ``x`` = token ids ``(B, T)`` (the attention mask
    is ``x != pad_id``), image ``x`` = pixel values ``(B, C, H, W)`` (``interpolate``: positions interpolated
    to the image size). ``subnet`` (the supernet's keyword) goes down to every layer."""
    if kind == "text":
        mask = None if pad_id is None else (x != pad_id).long()
        return model(input_ids=x, attention_mask=mask, **subnet).logits
    return model(pixel_values=x, interpolate_pos_encoding=interpolate, **subnet).logits


def encoder_subnet_config(config, layout: EncoderLayout, depth: int, heads: list[int], widths: list[int],
                          hidden: int | None = None):
    """The Hugging Face config of a subnet: ``depth`` leading layers, ``heads`` and MLP ``widths`` per layer, the
    hidden size ``hidden`` (None: the model's).

    Stock transformers builds it when the widths are uniform (``intermediate_size``) and the heads are all
    kept, or (ViT/DeiT) uniform (``num_attention_heads`` + ``head_dim``); a smaller hidden size only for
    ViT/DeiT (``hidden_size`` with ``head_dim``: BERT and RoBERTa derive the head width from it). Otherwise the
    per-layer values are recorded (``subnet_num_heads``, ``subnet_intermediate_sizes``, ``subnet_hidden_size``)
    with the module paths (``subnet_layout``) that ``load_subnet.py`` resizes."""
    config = copy.deepcopy(config)
    full, d = config.num_attention_heads, encoder_head_dim(config)
    config.num_hidden_layers = depth
    if widths:
        setattr(config, layout.mlp_field, max(widths))
    for key in (HEADS_KEY, WIDTHS_KEY, LAYOUT_KEY, HIDDEN_KEY):
        if hasattr(config, key):
            delattr(config, key)
    if len(set(widths)) > 1:
        setattr(config, WIDTHS_KEY, list(widths))
    if hidden is not None and hidden != config.hidden_size:
        if layout.head_dim_field:
            config.hidden_size, config.head_dim = hidden, d
        else:
            setattr(config, HIDDEN_KEY, hidden)
    if len(set(heads)) == 1 and layout.head_dim_field and heads[0] != full:
        config.num_attention_heads, config.head_dim = heads[0], d
    elif set(heads) != {full}:
        setattr(config, HEADS_KEY, list(heads))
    if any(hasattr(config, key) for key in (WIDTHS_KEY, HEADS_KEY, HIDDEN_KEY)):
        setattr(config, LAYOUT_KEY, {"layers": layout.layers, **layout.projections(), "head_dim": d,
                                     "classifier": layout.classifier})
    return config


def encoder_checkpointing(model, layers, enable: bool) -> None:
    """Gradient checkpointing through transformers (non-reentrant); the wrappers in ``layers`` are the
    checkpointed units and the library layers inside them (``.layer``) are not checkpointed again."""
    kwargs = {"use_reentrant": False}
    if enable and hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    elif enable:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        (getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable)()
    for layer in layers:
        layer.layer.gradient_checkpointing = False


def encoder_load(folder: str, architecture: str, dtype):
    """``(model, missing weight names)`` of a model folder, loaded with ``from_pretrained`` (safetensors)."""
    model, info = encoder_class(architecture).from_pretrained(folder, dtype=dtype, output_loading_info=True)
    return model, list(info.get("missing_keys", []))
