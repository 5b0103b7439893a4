"""Tiny Hugging Face models for the llm_lora tests, built in the test (no hub)."""
import importlib.util
from dataclasses import replace

import torch

from search_spaces.llm_lora.testing import build_model, save_model
from supernet.core.registry import build_supernet, space_config
from supernet.layers.lora import LoraLinear

TEXT = ["def add(a, b):\n    return a + b\n", "class Point:\n    x: int = 0\n    y: int = 0\n",
        "for i in range(10):\n    print(i * i)\n", "import os\nprint(os.getcwd())\n"] * 30


def model_dir(root, tokenizer, kind="llama", **dims):
    dims = {"hidden": 32, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 48, **dims}
    return str(save_model(root / kind, build_model(len(tokenizer), model_type=kind, **dims), tokenizer))


def supernet_over(path, **overrides):
    torch.manual_seed(0)
    cfg = replace(space_config("llm_lora", "tiny"), model=path, ranks=(2, 4, 8), width_fractions=(0.5, 0.75, 1.0),
                  **overrides)
    model = build_supernet("llm_lora", cfg)
    with torch.no_grad():  # trained-looking adapters: B is zero at init
        for layer in model.modules():
            if isinstance(layer, LoraLinear):
                layer.lora_B.normal_(0, 0.05)
    return model


def load_module(path):
    spec = importlib.util.spec_from_file_location("load_subnet_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
