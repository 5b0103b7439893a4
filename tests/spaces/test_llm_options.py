"""``llm_lora``'s training options that are also its config (``seq_len``, ``base_dtype``,
``gradient_checkpointing``): declared once, checked by one rule, over core's one table of precisions."""
import dataclasses

import pytest

from search_spaces.llm_lora.config import OPTIONS, LlmLoraConfig
from search_spaces.llm_lora.options import LlmLoraOptions
from supernet.core.errors import SupernetError
from supernet.core.options import PRECISION_NAMES


def test_the_shared_options_are_declared_once_in_the_config():
    config = {f.name: f for f in dataclasses.fields(LlmLoraConfig)}
    options = {f.name: f for f in dataclasses.fields(LlmLoraOptions)}
    for name in OPTIONS:
        assert options[name].metadata == config[name].metadata and options[name].metadata["help"], name
    assert options["seq_len"].default == 128 and config["seq_len"].default == 16  # defaults may differ, nothing else


@pytest.mark.parametrize("field, value, message", [
    ("base_dtype", "fp8", r"--base-dtype must be one of \['fp32', 'bf16', 'fp16'\], got 'fp8'"),
    ("seq_len", 1, r"--seq-len must be >= 2 and <= 1000000, got 1"),
    ("gradient_checkpointing", "yes", r"--gradient-checkpointing is true or false, got 'yes'")])
def test_one_check_refuses_the_same_value_in_both_places(field, value, message):
    with pytest.raises(SupernetError, match=message):
        LlmLoraOptions.from_dict({field: value})
    with pytest.raises(SupernetError, match=message):
        LlmLoraConfig(**{field: value})


def test_base_dtypes_are_the_placement_precisions():
    from search_spaces.llm_lora import base
    from supernet.core import placement
    choices = {f.name: f for f in dataclasses.fields(LlmLoraConfig)}["base_dtype"].metadata["choices"]
    assert tuple(choices) == PRECISION_NAMES == tuple(placement.PRECISIONS) == tuple(placement.DTYPES)
    assert base.DTYPES is placement.DTYPES
