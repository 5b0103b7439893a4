"""The pretrained classifier of the ``hf_encoder`` space: loaded, checked against its recorded identity.

A folder's model loads with ``from_pretrained`` (safetensors, sharded or not); a built-in variant
builds a random model from the config's fields. Refused with one line each: weights that cannot be
read, a checkpoint without the classifier's weights, a folder without its tokenizer (text) or image
processor (images), and a folder that changed since the supernet was trained (its identity hash,
:mod:`search_spaces.hf_identity`, covers config, weights, tokenizer and image processor files).
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from supernet.core.errors import SupernetError

from ..hf_compat import encoder_class, encoder_layout, encoder_load
from ..hf_identity import matches, model_hash, processor_files, tokenizer_files
from .config import HfEncoderConfig, hf_config


def load_base(config: HfEncoderConfig) -> tuple[nn.Module, HfEncoderConfig]:
    """The classification model (fp32, eval mode, trainable) and the config with its identity hash filled in
    (checked when already set)."""
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    if config.model is None:
        torch.manual_seed(config.seed)
        return encoder_class(config.architecture)(hf_config(config)).float().eval(), config
    config = replace(config, model_hash=checked_hash(config))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing classifier is reported below, in one line
    try:
        model, missing = encoder_load(config.model, config.architecture, torch.float32)
    except Exception as exc:  # noqa: BLE001  (safetensors, torch and transformers raise many types)
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SupernetError(f"cannot load the model in {config.model!r} ({type(exc).__name__}: {why}); its weight "
                            "files are damaged or incomplete: save the model again (save_pretrained)") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    head = encoder_layout(config.model_type).classifier
    lost = [k for k in missing if k.startswith(head + ".")]
    if lost:
        raise SupernetError(f"the checkpoint in {config.model!r} has no trained classifier ({lost[0]} is missing): "
                            f"fine-tune the model on your classes first, or save the {config.architecture} itself")
    return model.float().eval(), config


def checked_hash(config: HfEncoderConfig) -> str:
    """The identity hash of ``config.model``; refused when the folder lacks its tokenizer (text) or image
    processor (images), or differs from the hash the supernet recorded."""
    if config.kind == "text" and not tokenizer_files(config.model):
        raise SupernetError(f"--model {config.model!r} has no tokenizer files (tokenizer.json, vocab.txt, ...); "
                            "save the tokenizer beside the model (tokenizer.save_pretrained)")
    if config.kind == "image" and not processor_files(config.model):
        raise SupernetError(f"--model {config.model!r} has no image processor (preprocessor_config.json); save it "
                            "beside the model (image_processor.save_pretrained)")
    if config.model_hash is None:
        return model_hash(config.model)
    same, found = matches(config.model, config.model_hash)
    if not same:
        what = "tokenizer" if config.kind == "text" else "image processor"
        raise SupernetError(f"the model or {what} in {config.model!r} changed since this supernet was trained "
                            f"(hash {found[:15]} != {config.model_hash[:15]}); restore the original files")
    return config.model_hash
