"""hf_encoder: the supernet is the user's pretrained classifier run by transformers' own layers.

Largest arch == stock model (logits, fp32) for BERT, RoBERTa, ViT and DeiT loaded from folders (sharded
safetensors too); every subnet's export (static module, ONNX, hf/ folder) == the supernet's forward.
"""
import json

import numpy as np
import pytest
import torch
from tests.support.hf_encoder import KINDS, export_matches, hf_model, save_kind

from search_spaces.hf_compat import encoder_class, encoder_logits
from search_spaces.hf_encoder.config import with_model
from supernet.core.registry import build_supernet, space_config
from supernet.io.export import export_subnet, load_exported

pytestmark = pytest.mark.filterwarnings("ignore")


def supernet_over(folder):
    cfg = with_model(space_config("hf_encoder", "default"), str(folder))
    return build_supernet("hf_encoder", cfg).eval()


def batch(net, n=4, seed=0):
    return net.space.example_input(net.space.largest(), n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shard", [None, "20KB"])
def test_largest_equals_stock_model(tmp_path, kind, shard):
    folder = save_kind(tmp_path / kind, kind, shard)
    assert (shard is None) == (not list(folder.glob("*.index.json")))
    net = supernet_over(folder)
    stock = encoder_class(net.config.architecture).from_pretrained(folder).eval()
    x = batch(net)
    with torch.no_grad():
        ours, theirs = net(x, net.space.largest()), encoder_logits(stock, x, net.config.kind, net.config.pad_id)
    assert ours.shape == (4, 3)
    assert (ours - theirs).abs().max() <= 1e-5
    if net.config.kind == "text":  # padding is masked: the padded example's logits do not depend on pad content
        assert (x == net.config.pad_id).any()


@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_other_head_counts_and_depths(tmp_path, kind):
    """A config the tests did not default to: 3 layers of 6 heads (head width 4), MLP 40."""
    folder = save_kind(tmp_path / kind, kind, hidden=24, layers=3, heads=6, intermediate=40)
    net = supernet_over(folder)
    assert net.config.heads == (2, 3, 4, 6) and net.config.widths == (10, 20, 30, 40)
    stock = encoder_class(net.config.architecture).from_pretrained(folder).eval()
    x = batch(net)
    with torch.no_grad():
        assert (net(x, net.space.largest()) - encoder_logits(stock, x, net.config.kind, net.config.pad_id)
                ).abs().max() <= 1e-5
        rng = np.random.default_rng(0)
        for arch in [net.space.smallest()] + [net.space.sample(rng) for _ in range(3)]:
            assert (net.extract(arch).eval()(x) - net(x, arch)).abs().max() <= 1e-5


def test_subnets_differ_and_use_fewer_heads(tmp_path):
    net = supernet_over(save_kind(tmp_path / "b", "bert"))
    x, space = batch(net), net.space
    small = space.make({"depth": 2, "heads": [1, 1], "mlp_width": [64, 64]})
    with torch.no_grad():
        assert (net(x, small) - net(x, space.largest())).abs().max() > 1e-4
    static = net.extract(small)
    assert static.model.bert.encoder.layer[0].attention.self.query.weight.shape == (8, 32)




@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_export_equals_forward(tmp_path, kind):
    net = supernet_over(save_kind(tmp_path / kind, kind))
    space, x = net.space, batch(net)
    uniform = space.make({"depth": 1, "heads": [4, 4] if kind == "bert" else [2, 2], "mlp_width": [32, 32]})
    mixed = space.make({"depth": 2, "heads": [1, 4], "mlp_width": [16, 64]})
    for name, arch in {"uniform": uniform, "mixed": mixed}.items():
        out = tmp_path / f"export_{name}"
        meta = export_matches(net, arch, out, x)  # static module, ONNX and hf/ (load_subnet.py)
        assert meta["stock_loadable"] == (name == "uniform")
        if name == "uniform":  # stock transformers alone, no project code
            stock = encoder_class(net.config.architecture).from_pretrained(out / "hf").eval()
            with torch.no_grad():
                ref = net(x, arch)
                assert (encoder_logits(stock, x, net.config.kind, net.config.pad_id) - ref).abs().max() <= 1e-5
            assert stock.config.num_hidden_layers == 1
        assert (out / "hf" / ("tokenizer.json" if kind == "bert" else "preprocessor_config.json")).exists()


def test_interpolated_positions_for_another_image_size(tmp_path):
    folder = save_kind(tmp_path / "v", "vit")
    cfg = with_model(space_config("hf_encoder", "default"), str(folder), image_size=24)
    net = build_supernet("hf_encoder", cfg).eval()
    assert cfg.interpolate and net.space.input_shape(net.space.largest()) == (3, 24, 24)
    x = batch(net)
    stock = encoder_class(cfg.architecture).from_pretrained(folder).eval()
    with torch.no_grad():
        theirs = stock(pixel_values=x, interpolate_pos_encoding=True).logits
        assert (net(x, net.space.largest()) - theirs).abs().max() <= 1e-5
        arch = net.space.smallest()
        assert (net.extract(arch).eval()(x) - net(x, arch)).abs().max() <= 1e-5


@pytest.mark.parametrize("variant", ["tiny", "tiny_vit"])
def test_gradient_checkpointing_gives_the_same_gradients_and_bf16_runs(variant):
    from dataclasses import replace
    cfg = space_config("hf_encoder", variant)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        net = build_supernet("hf_encoder", replace(cfg, gradient_checkpointing=checkpointing)).train()
        assert all(layer.gradient_checkpointing == checkpointing for layer in net.layers)
        arch = net.space.make({"depth": 2, "heads": [2, 4], "mlp_width": [32, 64]})
        x = batch(net)
        torch.manual_seed(1)  # the same dropout masks (checkpointing replays the RNG state)
        net(x, arch).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])
    net.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = net(x, arch)
    with torch.no_grad():
        assert low.dtype == torch.bfloat16 and (low.float() - net(x, arch)).abs().max() < 0.1


@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_spread_depth_keeps_the_first_and_last_layers(tmp_path, kind):
    """``depth_rule="spread"``: a 2-layer subnet of a 4-layer model runs layers 0 and 3 (the stock model with
    only those two layers), a 3-layer one layers 0, 2, 3; exports equal the forward."""
    from dataclasses import replace
    folder = save_kind(tmp_path / kind, kind, layers=4)
    cfg = replace(with_model(space_config("hf_encoder", "default"), str(folder)), depth_rule="spread")
    net = build_supernet("hf_encoder", cfg).eval()
    space, x, full = net.space, batch(net), net.config.num_heads
    stock = encoder_class(net.config.architecture).from_pretrained(folder).eval()
    layers = stock.get_submodule(net.layout.layers)
    for depth, kept in {2: [0, 3], 3: [0, 2, 3]}.items():
        arch = space.make({"depth": depth, "heads": [full] * 4, "mlp_width": [max(net.config.widths)] * 4})
        parent, name = net.layout.layers.rsplit(".", 1)
        setattr(stock.get_submodule(parent), name, torch.nn.ModuleList(layers[i] for i in kept))
        with torch.no_grad():
            ref = net(x, arch)
            assert (encoder_logits(stock, x, net.config.kind, net.config.pad_id) - ref).abs().max() <= 1e-5
            assert (net.extract(arch)(x) - ref).abs().max() <= 1e-5
    mixed = space.make({"depth": 2, "heads": [1, 4, 4, 4], "mlp_width": [16, 64, 64, 64]})
    export_subnet(net, "hf_encoder", mixed, tmp_path / "export")
    with torch.no_grad():
        ref = net(x, mixed)
        assert (load_exported(tmp_path / "export")(x) - ref).abs().max() <= 1e-5
        assert (encoder_logits(hf_model(tmp_path / "export" / "hf"), x, net.config.kind, net.config.pad_id)
                - ref).abs().max() <= 1e-5
        assert (ref - net(x, space.make({"depth": 2, "heads": [1, 4, 1, 1], "mlp_width": [16, 64, 16, 16]}))
                ).abs().max() <= 1e-6  # positions past the depth are inactive


def hidden_supernet(folder, fractions=(0.5, 0.75, 1.0)):
    from dataclasses import replace
    cfg = replace(with_model(space_config("hf_encoder", "default"), str(folder)), hidden_fractions=fractions)
    return build_supernet("hf_encoder", cfg).eval()


@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_hidden_size_keeps_leading_channels_everywhere(tmp_path, kind):
    """A smaller hidden size runs on the leading channels of every tensor on the residual stream: its logits do not
    depend on the others (the full model's do), the largest arch is still the stock model, and the reorder of the
    hidden channels leaves the full model unchanged."""
    folder = save_kind(tmp_path / kind, kind)
    net = hidden_supernet(folder)
    assert net.config.hiddens == (16, 24, 32) and net.space.largest()["hidden"] == 32
    stock = encoder_class(net.config.architecture).from_pretrained(folder).eval()
    x = batch(net)
    with torch.no_grad():
        theirs = encoder_logits(stock, x, net.config.kind, net.config.pad_id)
        assert (net(x, net.space.largest()) - theirs).abs().max() <= 1e-5
        net.before_training([x[:2], x[2:]])
        assert (net(x, net.space.largest()) - theirs).abs().max() <= 1e-5
        arch = net.space.make({"depth": 2, "heads": [4, 2], "mlp_width": [64, 32], "hidden": 16})
        small, full = net(x, arch), net(x, net.space.largest())
        qkv, o = ("query.", "key.", "value.", "q_proj.", "k_proj.", "v_proj."), ("attention.output.dense.", "o_proj.")
        for name, param in net.named_parameters():  # channels 16.. of every hidden axis (size 32 but heads x d)
            for dim, size in enumerate(param.shape):
                heads_axis = (dim == 0 and any(k in name for k in qkv)) or (dim == 1 and any(k in name for k in o))
                if size == 32 and not heads_axis:
                    param.narrow(dim, 16, 16).normal_()
        assert (net(x, arch) - small).abs().max() <= 1e-6
        assert (net(x, net.space.largest()) - full).abs().max() > 1e-3


def test_vit_at_a_smaller_hidden_size_is_the_stock_vit_of_that_size(tmp_path):
    """Every head and MLP channel at hidden 16 of 32: stock ViTForImageClassification with hidden_size 16 (head_dim
    kept) filled with the leading entries of each tensor computes the same logits; the export is that stock model."""
    folder = save_kind(tmp_path / "vit", "vit")
    net = hidden_supernet(folder)
    arch = net.space.make({"depth": 2, "heads": [4, 4], "mlp_width": [64, 64], "hidden": 16})
    full = net.model.config
    config = type(full).from_dict({**full.to_dict(), "hidden_size": 16, "head_dim": net.config.head_dim})
    small = encoder_class(net.config.architecture)(config).eval()
    big = dict(net.extract(net.space.largest()).model.state_dict())
    small.load_state_dict({k: big[k][tuple(slice(0, n) for n in v.shape)] for k, v in small.state_dict().items()})
    x = batch(net)
    with torch.no_grad():
        ref = net(x, arch)
        assert (encoder_logits(small, x, "image", None) - ref).abs().max() <= 1e-5
    export_subnet(net, "hf_encoder", arch, tmp_path / "export")
    assert json.loads((tmp_path / "export" / "config.json").read_text())["stock_loadable"]
    stock = encoder_class(net.config.architecture).from_pretrained(tmp_path / "export" / "hf").eval()
    assert stock.config.hidden_size == 16
    with torch.no_grad():
        assert (encoder_logits(stock, x, "image", None) - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("kind", ["bert", "vit"])
def test_hidden_size_exports_equal_the_forward_and_count_exactly(tmp_path, kind):
    """At each hidden size: the static module, ONNX and hf/ (load_subnet.py: BERT records subnet_hidden_size)
    equal the supernet's forward, and params() counts the static module's parameters."""
    net = hidden_supernet(save_kind(tmp_path / kind, kind))
    x = batch(net)
    flops = []
    for hidden in net.config.hiddens:
        arch = net.space.make({"depth": 2, "heads": [1, 4], "mlp_width": [16, 64], "hidden": hidden})
        out = tmp_path / f"export{hidden}"
        export_matches(net, arch, out, x)
        assert net.params(arch) == sum(p.numel() for p in load_exported(out).parameters())
        assert sum(p.numel() for p in net.space.build_static(arch).parameters()) == net.params(arch)
        hf_config = json.loads((out / "hf" / "config.json").read_text())
        assert hf_config.get("subnet_hidden_size") == (hidden if kind == "bert" and hidden < 32 else None)
        flops.append(net.flops(arch))
    assert flops == sorted(flops) and len(set(flops)) == 3
