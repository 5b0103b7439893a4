"""``hf_encoder``: elastic attention heads, MLP widths and depth over a pretrained Hugging Face classifier.

The user's model (``ViTForImageClassification``, ``DeiTForImageClassification``,
``BertForSequenceClassification``, ``RobertaForSequenceClassification``, and XLM-RoBERTa's, CamemBERT's,
ELECTRA's and DistilBERT's ``...ForSequenceClassification``) is loaded from a local
folder (``--model PATH``: config + safetensors, sharded or not, with its tokenizer or image
processor). The supernet is that model, its own forward running on sliced weights
(:mod:`.layers`); all weights train. Dimensions, per layer ``i``:

- ``heads[i]``: attention heads kept (whole heads, leading after importance ordering);
- ``mlp_width[i]``: MLP channels kept (leading after importance ordering);
- ``depth``: layers kept, when ``max_skip > 0``: the first ones (``depth_rule="leading"``) or evenly spaced
  from the first to the last (``"spread"``);
- ``hidden``: the hidden size, one for the whole subnet, when ``hidden_fractions`` (``--hidden-fractions``)
  offers more than the model's own (leading channels of the residual stream, after importance ordering).

Heads, channels and hidden channels are ordered once before training (:mod:`.order`).
The ``tiny*`` variants build random models in memory (no files), for tests.
This module registers the space without importing torch; its parts load on first use.
"""
from __future__ import annotations

from dataclasses import replace

from supernet.core.data_info import DataInfo
from supernet.core.errors import SupernetError
from supernet.core.registry import register_space

from .config import HfEncoderConfig, handled, with_model
from .options import HfEncoderOptions


def build_space(config: HfEncoderConfig):
    from .space import HfEncoderSpace
    return HfEncoderSpace(config)


def build_supernet(config: HfEncoderConfig):
    from .model import HfEncoderSupernet
    return HfEncoderSupernet(config)


def build_static(config: HfEncoderConfig, arch):
    from .space import build_static as build
    return build(config, arch)


def fit_data(config: HfEncoderConfig, info: DataInfo, options: HfEncoderOptions | None) -> HfEncoderConfig:
    """The variant over ``--model`` (when given), checked against the data: the input kind, the labels within
    the classifier's classes, token ids within the vocabulary, the sequence or image size within the
    position embeddings."""
    options = options or HfEncoderOptions()
    fields = {"teacher": options.teacher, "gradient_checkpointing": options.gradient_checkpointing,
              "depth_rule": options.depth_rule}
    if options.hidden() != (1.0,):
        fields["hidden_fractions"] = options.hidden()
    if options.image_size is not None:
        fields["image_size"] = options.image_size
    if options.model is not None:
        config = with_model(config, options.model, **fields)
    else:  # a built-in random model (tests, examples): its classifier sized to the data's classes
        config = replace(config, **fields, num_labels=info.num_classes or config.num_labels)
    text = len(info.sample_shape) == 1 and info.max_token is not None
    if config.kind == "text" and not text:
        raise SupernetError(f"the model is a text classifier ({config.architecture}); the data {info.name!r} has "
                            f"inputs of shape {tuple(info.sample_shape)}: use --data text:FILE.csv|.jsonl")
    if config.kind == "image" and len(info.sample_shape) != 3:
        raise SupernetError(f"the model is an image classifier ({config.architecture}); the data {info.name!r} has "
                            f"inputs of shape {tuple(info.sample_shape)}: use image data")
    if info.num_classes is not None and info.num_classes > config.num_labels:
        raise SupernetError(f"the data {info.name!r} has {info.num_classes} classes but the model's classifier has "
                            f"{config.num_labels} ({config.architecture}); labels must be 0..{config.num_labels - 1}: "
                            "re-head the model (from_pretrained(..., num_labels=N, ignore_mismatched_sizes=True)) "
                            "and fine-tune it first")
    if text:
        return _fit_text(config, info, options)
    return _fit_image(config, info)


def _fit_text(config: HfEncoderConfig, info: DataInfo, options: HfEncoderOptions) -> HfEncoderConfig:
    if info.max_token >= config.vocab_size:
        raise SupernetError(f"the data's token ids reach {info.max_token} but the model's vocabulary has "
                            f"{config.vocab_size} entries; tokenise with the model's own tokenizer (--model)")
    if options.seq_len > config.max_positions:
        raise SupernetError(f"--seq-len {options.seq_len} is above the model's max_position_embeddings "
                            f"({config.max_positions}); use --seq-len {config.max_positions} or less")
    return replace(config, seq_len=info.sample_shape[0])


def _fit_image(config: HfEncoderConfig, info: DataInfo) -> HfEncoderConfig:
    if config.image_size % config.patch_size:
        raise SupernetError(f"--image-size {config.image_size} is not a multiple of the model's patch size "
                            f"({config.patch_size}); use {config.image_size // config.patch_size * config.patch_size}"
                            f" or the model's {config.model_image_size}")
    return config


VARIANTS = {
    # Tests: a 2-layer random BERT (hidden 32, 4 heads of 8, MLP 64, 3 labels), heads {2, 4}, widths {32, 64}.
    "tiny": HfEncoderConfig(),
    # Tests: a 2-layer random ViT on 16x16 RGB images in 4x4 patches, same choices.
    "tiny_vit": HfEncoderConfig(model_type="vit", architecture="ViTForImageClassification"),
    # Tests: the tiny BERT with an elastic hidden size too (16 or 32).
    "tiny_hidden": HfEncoderConfig(hidden_fractions=(0.5, 1.0)),
    # A user's model (--model PATH): heads and widths 25-100 %, up to 2 trailing layers skipped.
    "default": HfEncoderConfig(num_layers=4, head_fractions=(0.25, 0.5, 0.75, 1.0),
                               width_fractions=(0.25, 0.5, 0.75, 1.0), max_skip=2),
}

# DynaBERT's recipe: every arch of the step distils from the fixed teacher (the pretrained model), the largest
# and smallest plus one random arch (a sandwich); no label smoothing (logits of a pretrained head).
TRAIN_DEFAULTS = {"sampling": "sandwich", "num_random": 1, "label_smoothing": 0.0}

register_space("hf_encoder", VARIANTS, config_cls=HfEncoderConfig, build_space=build_space,
               build_supernet=build_supernet, build_static=build_static, default_variant="default",
               task="classification", fit_data=fit_data, options=HfEncoderOptions, train_defaults=TRAIN_DEFAULTS)

__all__ = ["HfEncoderConfig", "HfEncoderOptions", "handled"]
