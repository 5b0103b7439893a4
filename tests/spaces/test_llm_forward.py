"""The llm_lora supernet runs the library model's own forward: equivalence with the shipped forms.

For Llama, Mistral (sequence longer than its sliding window) and Qwen2 (sliding-window layers),
the supernet's logits for any arch equal those of the exported merged model and of the PEFT
adapter on its base, within 1e-5 in float32. Gradient checkpointing gives the same gradients.
"""
import json

import numpy as np
import pytest
import torch

from search_spaces.llm_lora.testing import build_model, save_model
from supernet.core.registry import build_supernet, space_config
from supernet.layers.lora import LoraLinear

from tests.support.llm import load_module

pytestmark = pytest.mark.slow  # every test here takes seconds: make test-fast leaves them out

WINDOW, SEQ = 6, 16  # every family's sequences are longer than the sliding window
FAMILIES = {"llama": {}, "mistral": {"sliding_window": WINDOW},
            "qwen2": {"use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 1}}


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("families")
    return {kind: str(save_model(root / kind, build_model(len(tokenizer), hidden=32, layers=3, heads=4, kv_heads=2,
                                                         intermediate=48, model_type=kind, **extra), tokenizer))
            for kind, extra in FAMILIES.items()}


def supernet_over(path, **overrides):
    torch.manual_seed(0)
    cfg = space_config("llm_lora", "tiny", model=path, ranks=(2, 4, 8), width_fractions=(0.5, 0.75, 1.0),
                       max_skip=1, **overrides)
    model = build_supernet("llm_lora", cfg)
    with torch.no_grad():  # trained-looking adapters: B is zero at init
        for layer in model.modules():
            if isinstance(layer, LoraLinear):
                layer.lora_B.normal_(0, 0.05)
    return model.eval()


def archs(space):
    rng = np.random.default_rng(0)
    mixed = space.make({"attn_rank": [8, 2, 4], "mlp_rank": [4, 8, 2], "mlp_width": [24, 48, 36], "depth": 3})
    return {"smallest": space.smallest(), "largest": space.largest(), "mixed": mixed,
            "random1": space.sample(rng), "random2": space.sample(rng)}


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_supernet_equals_merged_and_peft_forms(kind, family_dirs, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from supernet.io.export import export_subnet
    model = supernet_over(family_dirs[kind])
    ids = torch.randint(0, model.config.vocab_size, (2, SEQ), generator=torch.Generator().manual_seed(1))
    model.before_training([ids])
    for name, arch in archs(model.space).items():
        with torch.no_grad():
            expected = model(ids, arch)
        out = export_subnet(model, "llm_lora", arch, tmp_path / name)
        merged = load_module(out / "merged" / "load_subnet.py").load_subnet(out / "merged")
        with torch.no_grad():
            assert (merged(input_ids=ids).logits - expected).abs().max() <= 1e-5, (kind, name, "merged")
        base_path = json.loads((out / "config.json").read_text())["peft_base"]
        pruned = (out / "peft-base" / "config.json").exists()
        base = (load_module(out / "peft-base" / "load_subnet.py").load_subnet(base_path) if pruned
                else AutoModelForCausalLM.from_pretrained(base_path))
        peft = PeftModel.from_pretrained(base, out / "peft").eval()
        with torch.no_grad():
            assert (peft(input_ids=ids).logits - expected).abs().max() <= 1e-5, (kind, name, "peft")
    if FAMILIES[kind]:  # the window matters at this length: dropping it would change every logit after it
        merged.config.sliding_window = 10 ** 6
        with torch.no_grad():
            assert (merged(input_ids=ids).logits - expected).abs().max() > 1e-3


def test_gradient_checkpointing_gives_the_same_gradients(family_dirs):
    """Two archs' losses summed before one backward: each recompute must re-run its own arch's slices."""
    model = supernet_over(family_dirs["mistral"]).train()
    ids = torch.randint(0, model.config.vocab_size, (2, SEQ), generator=torch.Generator().manual_seed(2))
    pair = [archs(model.space)["mixed"], model.space.make({**archs(model.space)["random1"].to_dict(), "depth": 2})]

    def grads():
        model.zero_grad(set_to_none=True)
        sum(model(ids, arch).float().logsumexp(-1).mean() for arch in pair).backward()
        return {n: p.grad.clone() for n, p in model.adapters() if p.grad is not None}
    calls = []
    handles = [layer.layer.register_forward_pre_hook(lambda *a: calls.append(1)) for layer in model.layers]
    plain = grads()
    plain_calls, calls[:] = len(calls), []
    from search_spaces.llm_lora.layers import set_checkpointing
    set_checkpointing(model.base, True)
    checkpointed = grads()
    for h in handles:
        h.remove()
    assert len(calls) == 2 * plain_calls  # every kept layer ran again in the backward pass
    assert plain.keys() == checkpointed.keys() and len(plain) > 0
    assert all(torch.allclose(plain[k], checkpointed[k], atol=1e-6, rtol=1e-5) for k in plain)


def test_bf16_base_keeps_fp32_adapters_and_exports_bf16(family_dirs, tmp_path):
    from safetensors import safe_open

    from supernet.io.export import export_subnet
    full, half = supernet_over(family_dirs["llama"]), supernet_over(family_dirs["llama"], base_dtype="bf16")
    assert half.layers[0].projection("q_proj").base_layer.weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for _, p in half.adapters())
    ids = torch.randint(0, full.config.vocab_size, (2, SEQ), generator=torch.Generator().manual_seed(3))
    arch = archs(full.space)["mixed"]
    with torch.no_grad():
        a, b = full(ids, arch), half(ids, arch).float()
    assert (a - b).abs().max() <= 0.05 * a.abs().max()
    out = export_subnet(half, "llm_lora", arch, tmp_path / "bf16")
    with safe_open(str(out / "merged" / "model.safetensors"), "pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"BF16"}


def test_sharded_base_loads_and_export_writes_shards(family_dirs, tmp_path, tokenizer):
    from transformers import AutoModelForCausalLM

    from supernet.io.export import export_subnet
    from supernet.io.shards import write_shards
    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(family_dirs["qwen2"]).save_pretrained(sharded, max_shard_size="40KB")
    tokenizer.save_pretrained(sharded)
    assert len(list(sharded.glob("model-*.safetensors"))) > 1
    one, many = supernet_over(family_dirs["qwen2"]), supernet_over(str(sharded))
    ids = torch.randint(0, one.config.vocab_size, (2, SEQ), generator=torch.Generator().manual_seed(4))
    arch = archs(one.space)["mixed"]
    with torch.no_grad():
        assert torch.equal(one(ids, arch), many(ids, arch))
    out = tmp_path / "shards"
    out.mkdir()
    files = write_shards(out, lambda: many.merged_tensors(arch), max_shard_bytes=30_000)
    assert len(files) > 1 and (out / "model.safetensors.index.json").exists()
    export = export_subnet(many, "llm_lora", arch, tmp_path / "export")
    for name in ("model.safetensors.index.json", *(f.name for f in files)):
        (export / "merged" / name).unlink(missing_ok=True)
    for f in [*files, out / "model.safetensors.index.json"]:
        (export / "merged" / f.name).write_bytes(f.read_bytes())
    merged = load_module(export / "merged" / "load_subnet.py").load_subnet(export / "merged")
    with torch.no_grad():
        assert (merged(input_ids=ids).logits - many(ids, arch)).abs().max() <= 1e-5
