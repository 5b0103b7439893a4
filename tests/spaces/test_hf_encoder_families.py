"""hf_encoder on the other BERT-family classifiers it handles: XLM-RoBERTa, CamemBERT (RoBERTa's modules), ELECTRA
(its own embedding width and projection) and DistilBERT (its own module and config names).

Each: the largest arch equals the stock model; a mixed subnet and a smaller hidden size export (static module,
ONNX, hf/) equal to the supernet's forward; a uniform subnet's hf/ loads with stock from_pretrained.
"""
from dataclasses import replace

import pytest
import torch
from tests.support.hf_encoder import export_matches, save_kind

from search_spaces.hf_compat import encoder_class, encoder_logits
from search_spaces.hf_encoder.config import with_model
from supernet.core.registry import build_supernet, space_config
from supernet.io.export import load_exported

pytestmark = pytest.mark.filterwarnings("ignore")
FAMILIES = {"xlm-roberta": {}, "camembert": {}, "electra": {"embedding_size": 16}, "distilbert": {}}


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_family_equals_stock_and_exports(tmp_path, kind):
    folder = save_kind(tmp_path / kind, kind, **FAMILIES[kind])
    cfg = replace(with_model(space_config("hf_encoder", "default"), str(folder)), hidden_fractions=(0.5, 1.0))
    net = build_supernet("hf_encoder", cfg).eval()
    assert net.config.model_type == kind and net.config.hiddens == (16, 32) and net.config.intermediate_size == 64
    stock = encoder_class(net.config.architecture).from_pretrained(folder).eval()
    x = net.space.example_input(net.space.largest(), 4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs = encoder_logits(stock, x, "text", net.config.pad_id)
        assert (net(x, net.space.largest()) - theirs).abs().max() <= 1e-5
    net.before_training([x[:2], x[2:]])
    with torch.no_grad():
        assert (net(x, net.space.largest()) - theirs).abs().max() <= 1e-5
    archs = {"uniform": {"depth": 1, "heads": [4, 4], "mlp_width": [32, 32], "hidden": 32},
             "mixed": {"depth": 2, "heads": [1, 4], "mlp_width": [16, 64], "hidden": 32},
             "narrow": {"depth": 2, "heads": [2, 4], "mlp_width": [48, 64], "hidden": 16}}
    for name, values in archs.items():
        arch, out = net.space.make(values), tmp_path / name
        loadable = export_matches(net, arch, out, x)["stock_loadable"]
        assert net.params(arch) == sum(p.numel() for p in load_exported(out).parameters())
        assert loadable == (name == "uniform")
        if loadable:
            reloaded = encoder_class(net.config.architecture).from_pretrained(out / "hf").eval()
            with torch.no_grad():
                ref = net(x, arch)
                assert (encoder_logits(reloaded, x, "text", net.config.pad_id) - ref).abs().max() <= 1e-5
