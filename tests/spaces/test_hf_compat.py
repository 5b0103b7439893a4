"""Canary of search_spaces/hf_compat.py: every transformers touch point, checked against the installed release.

If a transformers upgrade moves one of them, the test named after it fails here first."""
import configparser
import re
from pathlib import Path

import pytest
import torch
import transformers
from packaging.version import Version

from search_spaces import hf_compat
from search_spaces.llm_lora.testing import build_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llama():
    return build_model(64, hidden=16, layers=2, heads=2, kv_heads=1, intermediate=24).eval()


def test_installed_release_is_inside_the_tested_bound_and_setup_cfg_says_the_same():
    low, high = hf_compat.TESTED
    assert Version(low) <= Version(transformers.__version__) < Version(high)
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    requirement = [r for r in cfg["options"]["install_requires"].split("\n") if r.startswith("transformers")]
    assert requirement == [f"transformers>={low},<{high}"]


def test_decoder_layers_are_the_models_layers(llama):
    layers = hf_compat.decoder_layers(llama)
    assert len(layers) == llama.config.num_hidden_layers and all(isinstance(x, torch.nn.Module) for x in layers)


class Recording(hf_compat.GradientCheckpointingLayer):
    """A decoder layer's wrapper that records the keywords transformers hands down to it."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.seen = layer, []

    def forward(self, *args, **kwargs):
        self.seen.append(kwargs.pop("subnet", None))
        return self.layer(*args, **kwargs)


def test_unknown_keywords_of_the_model_call_reach_every_decoder_layer(llama):
    layers = hf_compat.decoder_layers(llama)
    for i, layer in enumerate(list(layers)):
        layers[i] = Recording(layer)
    try:
        ids = torch.randint(0, 64, (2, 5))
        llama(input_ids=ids, subnet=("cut",))
        assert [layer.seen for layer in layers] == [[("cut",)]] * len(layers)
    finally:
        for i, layer in enumerate(list(layers)):
            layers[i] = layer.layer


def test_checkpointing_turns_on_and_off_with_equal_gradients():
    model = build_model(64, hidden=16, layers=2, heads=2, kv_heads=1, intermediate=24).train()
    for i, layer in enumerate(list(hf_compat.decoder_layers(model))):
        hf_compat.decoder_layers(model)[i] = Recording(layer)
    ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(0))

    def grads():
        model.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = grads()
    hf_compat.set_checkpointing(model, True, Recording)
    assert all(layer.gradient_checkpointing for layer in hf_compat.decoder_layers(model))
    checkpointed = grads()
    hf_compat.set_checkpointing(model, False, Recording)
    assert not any(layer.gradient_checkpointing for layer in hf_compat.decoder_layers(model))
    assert len(plain) == len(checkpointed) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed))


@torch.no_grad()
def test_the_kv_cache_keyword_continues_a_prompt_as_the_whole_sequence_does(llama):
    ids = torch.randint(0, 64, (1, 7), generator=torch.Generator().manual_seed(1))
    whole = llama(input_ids=ids, use_cache=False).logits[:, -1]
    prompt = llama(input_ids=ids[:, :-1], use_cache=True)
    cache = hf_compat.cache_of(prompt)
    step = llama(input_ids=ids[:, -1:], use_cache=True, **{hf_compat.cache_keyword(llama): cache}).logits[:, -1]
    assert cache is not None and torch.allclose(step, whole, atol=1e-5)


def test_nothing_else_imports_transformers_internals():
    """Outside hf_compat, the spaces import only transformers' public top level (and its tokenizers)."""
    internal = re.compile(r"from transformers\.(?!utils import logging)[\w.]+ import|import transformers\.")
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "search_spaces").rglob("*.py")
                 if p.name != "hf_compat.py" and internal.search(p.read_text())]
    assert not offenders, offenders
