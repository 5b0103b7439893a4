"""Canary of search_spaces/hf_compat.py (encoders): every transformers internal the hf_encoder space relies on.

A transformers release that moves a module, stops passing keywords down to the layers, or stops reshaping
q/k/v by head width fails here first.
"""
import pytest
import torch
from torch import nn

from search_spaces import hf_compat
from search_spaces.hf_encoder import testing

pytestmark = pytest.mark.filterwarnings("ignore")


def build(kind):
    if kind in testing.TEXT:
        return testing.build_text_model(50, kind)
    return testing.build_image_model(kind)


def inputs(model, kind):
    if kind in testing.TEXT:
        return torch.randint(2, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    return torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", sorted(hf_compat.ENCODER_LAYOUTS))
def test_layout_paths_resolve(kind):
    layout = hf_compat.encoder_layout(kind)
    model = build(kind)
    assert type(model).__name__ in layout.architectures
    layers = hf_compat.encoder_layers(model, layout)
    assert isinstance(layers, nn.ModuleList) and len(layers) == model.config.num_hidden_layers
    hd = model.config.num_attention_heads * hf_compat.encoder_head_dim(model.config)
    layer = layers[0]
    for role in ("query", "key", "value"):
        assert layer.get_submodule(getattr(layout, role)).out_features == hd
    assert layer.get_submodule(layout.out).in_features == hd
    assert layer.get_submodule(layout.fc1).out_features == getattr(model.config, layout.mlp_field)
    assert layer.get_submodule(layout.fc2).in_features == getattr(model.config, layout.mlp_field)
    assert model.get_submodule(layout.classifier).out_features == model.config.num_labels
    assert type(layer).__mro__[1].__name__ == "GradientCheckpointingLayer"


class Spy(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer, self.seen = layer, []

    def forward(self, hidden, *args, subnet=None, **kwargs):
        self.seen.append(subnet)
        return self.layer(hidden, *args, **kwargs)


@pytest.mark.parametrize("kind", sorted(hf_compat.ENCODER_LAYOUTS))
def test_keywords_reach_layers_and_fewer_rows_are_fewer_heads(kind):
    layout = hf_compat.encoder_layout(kind)
    model = build(kind).eval()
    layers = hf_compat.encoder_layers(model, layout)
    x = inputs(model, kind)
    layers[0] = Spy(layers[0])
    with torch.no_grad():
        hf_compat.encoder_logits(model, x, layout.kind, getattr(model.config, "pad_token_id", None), subnet=("cut",))
    assert layers[0].seen == [("cut",)]
    layers[0] = layers[0].layer
    # drop the last head of layer 0 by slicing rows / columns: the forward still runs, and equals zeroing it
    d, lin = hf_compat.encoder_head_dim(model.config), layers[0]
    keep = (model.config.num_attention_heads - 1) * d
    with torch.no_grad():
        out = lin.get_submodule(layout.out)
        zeroed = out.weight.clone()
        zeroed[:, keep:] = 0
        ref_w = out.weight.clone()
        out.weight.copy_(zeroed)
        ref = hf_compat.encoder_logits(model, x, layout.kind, getattr(model.config, "pad_token_id", None))
        out.weight.copy_(ref_w)
        for role in ("query", "key", "value"):
            m = lin.get_submodule(getattr(layout, role))
            new = nn.Linear(m.in_features, keep, bias=m.bias is not None)
            new.weight.copy_(m.weight[:keep])
            if m.bias is not None:
                new.bias.copy_(m.bias[:keep])
            owner, _, name = getattr(layout, role).rpartition(".")
            setattr(lin.get_submodule(owner), name, new)
        new = nn.Linear(keep, out.out_features)
        new.weight.copy_(out.weight[:, :keep])
        new.bias.copy_(out.bias)
        owner, _, name = layout.out.rpartition(".")
        setattr(lin.get_submodule(owner), name, new)
        cut = hf_compat.encoder_logits(model, x, layout.kind, getattr(model.config, "pad_token_id", None))
    assert (cut - ref).abs().max() <= 1e-5


def test_vit_reads_head_dim_and_bert_does_not():
    vit = testing.build_image_model("vit", heads=2, head_dim=8)
    assert vit.vit.layers[0].attention.q_proj.out_features == 16
    bert_cfg = testing.build_text_model(50).config
    bert_cfg.head_dim = 4  # ignored by BERT: its head size is hidden / heads
    import transformers
    assert transformers.BertForSequenceClassification(bert_cfg).bert.encoder.layer[0].attention.self.query.out_features == 32


def test_checkpointing_switch():
    model = build("bert")
    layers = hf_compat.encoder_layers(model, hf_compat.encoder_layout("bert"))
    for i, layer in enumerate(layers):
        layers[i] = Spy(layer)
    hf_compat.encoder_checkpointing(model, layers, True)
    assert model.is_gradient_checkpointing
    hf_compat.encoder_checkpointing(model, layers, False)
    assert not model.is_gradient_checkpointing


@pytest.mark.parametrize("kind", sorted(hf_compat.ENCODER_LAYOUTS))
def test_residual_norms_are_layer_norms_over_the_hidden_size(kind):
    """A smaller hidden size slices every norm on the stream: each is an nn.LayerNorm (the class hf_encoder re-types
    to normalise over the channels kept), those in the layers of the hidden size (outside them only an embedding
    norm of another width may differ: ELECTRA's), at least one per layer."""
    model = build(kind)
    layout = hf_compat.encoder_layout(kind)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    inside = [m for m in hf_compat.encoder_layers(model, layout).modules() if isinstance(m, nn.LayerNorm)]
    assert all(type(m) is nn.LayerNorm for m in norms)
    assert all(m.normalized_shape == (model.config.hidden_size,) for m in inside)
    assert len(inside) >= model.config.num_hidden_layers
    odd = [m for m in norms if m.normalized_shape != (model.config.hidden_size,)]
    assert len(odd) <= (1 if kind == "electra" else 0)
    assert not [m for m in model.modules() if "norm" in type(m).__name__.lower() and not isinstance(m, nn.LayerNorm)]
