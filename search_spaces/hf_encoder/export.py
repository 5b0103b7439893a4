"""Export an ``hf_encoder`` subnet: the engine's files plus a Hugging Face folder.

``model.safetensors`` + ``model.onnx``: the static module (:class:`.static.EncoderClassifier`,
``x -> logits``; ONNX input ``input``: int64 token ids or float pixels, dynamic batch), loaded by
``supernet.load_exported``. ``hf/``: the same weights as a Hugging Face model folder
(``save_pretrained``, with the tokenizer or image processor and ``load_subnet.py``). Stock
``from_pretrained`` loads it when its config can express the arch (:func:`stock_loadable`);
otherwise ``load_subnet.py`` resizes the layers as ``config.json`` records.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file

from supernet.core.arch import Arch

from ..hf_compat import LAYOUT_KEY

LOADER = Path(__file__).with_name("loader.py")
PROCESSOR_FILES = ("preprocessor_config.json",)


def stock_loadable(supernet, arch: Arch) -> bool:
    """Whether stock transformers loads the arch's ``hf/`` folder: uniform MLP width, and every head kept
    (the text models) or a uniform head count (ViT, DeiT: ``head_dim`` in the config). Depth always."""
    return not hasattr(supernet.subnet_hf_config(arch), LAYOUT_KEY)


def write_all(supernet, arch: Arch, folder: Path) -> dict:
    """Write ``model.safetensors``, ``model.onnx`` and ``hf/`` into ``folder``; what was written."""
    net = supernet.extract(arch).eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    write_onnx(net, supernet, arch, folder / "model.onnx")
    stock = stock_loadable(supernet, arch)
    write_hf(net.model, supernet.config, folder / "hf", stock)
    return {"format": "hf-encoder", "hf": "hf", "stock_loadable": stock}


def write_onnx(net, supernet, arch: Arch, path: Path) -> None:
    """ONNX graph of ``net`` with a dynamic batch axis; input ``input``, output ``logits``."""
    x = supernet.space.example_input(arch, 2, torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


def write_hf(model, config, folder: Path, stock: bool) -> None:
    """The subnet's model (``save_pretrained`` when stock transformers loads it, else its config and its
    state dict under the module names ``load_subnet.py`` builds: ``save_pretrained`` may rename weights to a
    family's older checkpoint names, which only ``from_pretrained`` maps back), its tokenizer or image
    processor files, and ``load_subnet.py``."""
    if stock:
        model.save_pretrained(folder)
    else:
        folder.mkdir(parents=True)
        model.config.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    if config.model is not None:
        if config.kind == "text":
            from transformers import AutoTokenizer
            AutoTokenizer.from_pretrained(config.model).save_pretrained(folder)
        for name in PROCESSOR_FILES:
            if (Path(config.model) / name).exists():
                shutil.copyfile(Path(config.model) / name, folder / name)
    shutil.copyfile(LOADER, folder / "load_subnet.py")
