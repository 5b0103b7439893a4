"""Model folders for the hf_encoder tests: small random classifiers saved with save_pretrained (no hub), and the
check that an export equals the supernet's forward."""
import json
import sys
from pathlib import Path

from search_spaces.hf_encoder import testing

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "birds fly over the sea", "fish swim in a lake",
         "the sun is hot today", "rain falls on the roof"] * 4
KINDS = ("bert", "roberta", "vit", "deit")


def save_kind(folder: Path, kind: str, shard: str | None = None, **config) -> Path:
    """A random ``kind`` classifier saved into ``folder`` (sharded at ``shard``) with its tokenizer / processor."""
    if kind in testing.TEXT:
        tok = testing.train_tokenizer(TEXTS, 80)
        model = testing.build_text_model(len(tok), kind, **config)
        return testing.save_model(folder, model, tok, shard)
    model = testing.build_image_model(kind, **config)
    return testing.save_model(folder, model, testing.image_processor(16, model.config.num_channels), shard)


def hf_model(folder: Path):
    """The ``hf/`` folder of an export loaded by its own ``load_subnet.py``."""
    sys.path.insert(0, str(folder))
    try:
        import importlib

        import load_subnet
        importlib.reload(load_subnet)
        return load_subnet.load_subnet(folder)
    finally:
        sys.path.remove(str(folder))


def export_matches(net, arch, out: Path, x, tol: float = 1e-5) -> dict:
    """Export ``arch`` of ``net`` into ``out`` and assert that its static module, ONNX graph and ``hf/`` folder give
    the supernet's logits on ``x`` within ``tol``; returns the export's ``config.json``."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from search_spaces.hf_compat import encoder_logits
    from supernet.io.export import export_subnet, load_exported
    export_subnet(net, "hf_encoder", arch, out)
    with torch.no_grad():
        ref = net(x, arch)
        assert (load_exported(out)(x) - ref).abs().max() <= tol
        onnx = ort.InferenceSession(str(out / "model.onnx")).run(None, {"input": x.numpy()})[0]
        assert np.abs(onnx - ref.numpy()).max() <= tol
        assert (encoder_logits(hf_model(out / "hf"), x, net.config.kind, net.config.pad_id) - ref).abs().max() <= tol
    return json.loads((out / "config.json").read_text())
