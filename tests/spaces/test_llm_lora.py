"""The llm_lora space on tiny Hugging Face models built in the test (no hub)."""
import json
import shutil
from dataclasses import replace

import pytest
import torch

from supernet.core.errors import SupernetError
from supernet.core.registry import build_supernet, space_config
from supernet.layers.lora import LoraLinear, LoraSlice, lora_merged, sliced_tensors
from tests.support.llm import TEXT, load_module, model_dir, supernet_over

pytestmark = pytest.mark.slow  # every test here takes seconds: make test-fast leaves them out



@pytest.fixture(scope="module")
def llama(tmp_path_factory, tokenizer):
    return model_dir(tmp_path_factory.mktemp("models"), tokenizer)



def mixed_arch(space):
    return space.make({"attn_rank": [8, 2], "mlp_rank": [4, 8], "mlp_width": [24, 48], "depth": 2})


def test_rank_and_width_slices_are_prefixes_with_fixed_scaling():
    from torch.func import functional_call
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(6, 10), rank=8, scaling=0.5)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 6)
    cut = LoraSlice(rank=2, out=4)
    w, b, a, bb = layer.base_layer.weight, layer.base_layer.bias, layer.lora_A, layer.lora_B
    expected = x @ w[:4].T + b[:4] + 0.5 * (x @ a[:2].T) @ bb[:4, :2].T
    assert torch.allclose(functional_call(layer, sliced_tensors(layer, cut, ""), (x,)), expected, atol=1e-6)
    assert torch.allclose(layer(x), x @ w.T + b + 0.5 * (x @ a.T) @ bb.T, atol=1e-6)  # unsliced: the largest
    weight, bias = lora_merged(layer, LoraSlice(rank=3, inp=5))
    assert weight.shape == (10, 5) and torch.allclose(weight, w[:, :5] + 0.5 * bb[:, :3] @ a[:3, :5])


def test_channel_reordering_is_exact_and_sorts_by_importance(llama):
    model = supernet_over(llama)
    ids = torch.randint(0, model.config.vocab_size, (4, 16), generator=torch.Generator().manual_seed(0))
    largest = model.space.largest()
    before = model(ids, largest)
    model.before_training([ids])
    assert torch.allclose(model(ids, largest), before, atol=1e-5)  # exact: the full model is unchanged
    assert not torch.equal(model.mlp_order, torch.arange(48).repeat(2, 1))
    # leading channels are the most important now: the half-width model loses less than with the original order
    half = model.space.make({**largest.to_dict(), "mlp_width": [24, 24]})
    reordered_gap = (model(ids, half) - before).abs().mean()
    fresh = supernet_over(llama)
    assert reordered_gap < (fresh(ids, half) - before).abs().mean()


def test_reordered_adapters_reload_onto_a_fresh_base(llama, tmp_path):
    from safetensors.torch import save_file

    from supernet.io.checkpoint import load_weights
    model = supernet_over(llama)
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    model.before_training([ids])
    arch = mixed_arch(model.space)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    assert not any(k.startswith("base.") for k in model.state_dict())  # adapters and order only
    other = build_supernet("llm_lora", model.config)
    load_weights(other, tmp_path / "w.safetensors")
    assert torch.allclose(other(ids, arch), model(ids, arch), atol=1e-5)


def test_only_adapters_train(llama):
    from supernet.training.train_config import TrainConfig
    from supernet.training.trainer import make_optimizer
    model = supernet_over(llama)
    opt = make_optimizer(model, TrainConfig(optimizer="adamw"))
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert trained == {id(p) for _, p in model.adapters()} and len(trained) == 2 * 7 * 2
    ids = torch.randint(0, model.config.vocab_size, (2, 12))
    model(ids, mixed_arch(model.space)).logsumexp(-1).mean().backward()
    assert all(p.grad is None for n, p in model.base.named_parameters() if "lora_" not in n)
    # depth 2 with rank 2 in layer 1's attention: only A[:2] and B[:, :2] get gradients
    grad = model.layers[1].projection("q_proj").lora_A.grad
    assert grad[:2].abs().sum() > 0 and grad[2:].abs().sum() == 0


@pytest.mark.parametrize("kind", ["mistral", "qwen2"])
def test_other_families_extract_equals_forward(tmp_path, tokenizer, kind):
    model = supernet_over(model_dir(tmp_path, tokenizer, kind))
    ids = torch.randint(0, model.config.vocab_size, (2, 10))
    for arch in (model.space.smallest(), mixed_arch(model.space)):
        assert torch.allclose(model.extract(arch)(ids), model(ids, arch), atol=1e-5)



def test_export_forms_load_with_stock_libraries(llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from supernet.io.export import export_subnet, load_exported
    model = supernet_over(llama)
    ids = torch.randint(0, model.config.vocab_size, (2, 14), generator=torch.Generator().manual_seed(2))
    model.before_training([ids])
    uniform = model.space.make({"attn_rank": [8, 2], "mlp_rank": [4, 8], "mlp_width": [24, 24], "depth": 2})
    cases = {"full": model.space.largest().replace(attn_rank=(2, 8)), "uniform": uniform,
             "per-layer": mixed_arch(model.space), "shallow": model.space.smallest()}
    for name, arch in cases.items():
        out = export_subnet(model, "llm_lora", arch, tmp_path / name)
        expected = model(ids, arch)
        meta = json.loads((out / "config.json").read_text())
        if name in ("full", "uniform", "shallow"):  # uniform widths: plain from_pretrained
            merged = AutoModelForCausalLM.from_pretrained(out / "merged")
        else:
            merged = load_module(out / "merged" / "load_subnet.py").load_subnet(out / "merged")
        assert (merged(input_ids=ids).logits - expected).abs().max() <= 1e-4, name
        base_path = meta["peft_base"]
        assert (base_path == llama) == (name == "full")  # full width and depth: the adapter is for the base itself
        base = (load_module(out / "peft-base" / "load_subnet.py").load_subnet(base_path) if name == "per-layer"
                else AutoModelForCausalLM.from_pretrained(base_path))
        peft = PeftModel.from_pretrained(base, out / "peft").eval()
        assert (peft(input_ids=ids).logits - expected).abs().max() <= 1e-4, name
        assert (load_exported(out)(ids) - expected).abs().max() <= 1e-4


def test_unsupported_and_changed_models_are_refused(tmp_path, tokenizer, llama):
    from transformers import GPT2Config, GPT2LMHeadModel
    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=len(tokenizer))).save_pretrained(gpt2)
    with pytest.raises(SupernetError, match="'gpt2' model; llm_lora supports"):
        replace(space_config("llm_lora", "tiny"), model=str(gpt2))
    with pytest.raises(SupernetError, match="not a Hugging Face model folder"):
        replace(space_config("llm_lora", "tiny"), model=str(tmp_path))
    cfg = supernet_over(llama).config
    with pytest.raises(SupernetError, match="changed since this supernet was trained"):
        build_supernet("llm_lora", replace(cfg, model_hash="0" * 64))


def test_train_search_export_through_the_cli(tmp_path, tokenizer, capsys):
    from supernet.cli.main import main
    path = model_dir(tmp_path, tokenizer, hidden=16, intermediate=32)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"body": t}) for t in TEXT))
    run, search, export = tmp_path / "run", tmp_path / "search", tmp_path / "export"
    common = ["--space", "llm_lora", "--variant", "tiny", "--model", path, "--data", f"text:{corpus}", "--seq-len", "16"]
    assert main(["train", *common, "--text-field", "body", "--steps", "6", "--batch-size", "4", "--grad-accum", "2",
                 "--optimizer", "adamw", "--lr", "1e-2", "--warmup-steps", "1", "--out", str(run), "--no-progress",
                 "--no-tensorboard", "--threads", "1"]) == 0
    saved = json.loads(sorted((run / "checkpoints").glob("step-*"))[-1].joinpath("config.json").read_text())
    assert saved["space_config"]["model_hash"] and saved["space_config"]["model"] == path
    assert main(["search", str(run), "--objectives", "loss,params", "--max-params", "13K", "--evaluations", "12",
                 "--out", str(search), "--no-progress", "--no-tensorboard", "--threads", "1"]) == 0
    front = json.loads((search / "pareto.json").read_text())["front"]
    assert front and all(r["params"] <= 13_000 and r["loss"] > 0 for r in front)
    # round 0's baselines, less the largest arch, which breaks the 13K params budget (skipped, issue 34)
    assert {"smallest", "median"} == {b for r in _csv(search) for b in r["baseline"].split("+") if b}
    assert main(["export", "--from-search", str(search), "--pick", "max-accuracy-under-budget",
                 "--out", str(export)]) == 0
    assert (export / "merged" / "config.json").exists() and (export / "peft" / "adapter_config.json").exists()
    capsys.readouterr()
    assert main(["train", "--data", f"text:{corpus}", "--model", path, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err  # (hf_encoder has a --model too, when registered)
    assert "--model is an option of space " in err and "'llm_lora'" in err and "not 'mobilenet'" in err
    assert main(["train", *common[:6], "--data", f"text:{corpus}", "--out", str(tmp_path / "bad2")]) == 2
    assert "no text field 'text'" in capsys.readouterr().err


def _csv(folder):
    import csv
    with open(folder / "evaluations.csv") as fh:
        return list(csv.DictReader(fh))


def test_resumed_training_equals_uninterrupted(tmp_path, tokenizer):
    """The channel order is decided once, saved with the adapters, and re-applied to a fresh base on resume."""
    from safetensors.torch import load_file

    from supernet import TrainConfig, resume_training, train
    path = model_dir(tmp_path, tokenizer, hidden=16, intermediate=32)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(TEXT))
    cfg = dict(space="llm_lora", variant="tiny", space_options={"model": path, "seq_len": 16}, data=f"text:{corpus}",
               batch_size=4,
               optimizer="adamw", lr=1e-2, warmup_steps=1, tensorboard=False, progress=False, threads=1)
    straight = train(TrainConfig(steps=4, **cfg), tmp_path / "straight")
    train(TrainConfig(steps=4, checkpoint_every=2, **cfg), tmp_path / "split")
    for step in sorted((tmp_path / "split" / "checkpoints").glob("step-*"))[1:]:
        shutil.rmtree(step)  # as if the run had stopped after step 2
    resume_training(tmp_path / "split")
    a = load_file(str(straight / "checkpoints" / "step-0000004" / "weights.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoints" / "step-0000004" / "weights.safetensors"))
    assert a.keys() == b.keys() and not torch.equal(a["mlp_order"], torch.arange(32).repeat(2, 1))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_evaluation_batches_bound_the_logits(llama, monkeypatch):
    """500 sequences of a large vocabulary's float32 logits would take gigabytes: the LLM supernet
    evaluates in batches whose logits stay within 256 MiB, and evaluate_arch uses its hook."""
    from search_spaces.llm_lora.model import LOGITS_BUDGET, eval_batch_for
    from supernet.core.contract import hook
    from supernet.evaluation import subnet

    net = supernet_over(llama)
    own = hook(net, "eval_batch_size")()
    assert own == min(500, LOGITS_BUDGET // (net.config.seq_len * net.config.vocab_size))
    assert eval_batch_for(512, 151_936) == 1
    assert hook(torch.nn.Linear(2, 2), "eval_batch_size")() == 500

    asked = []
    monkeypatch.setattr(subnet, "calibrated_subnet", lambda *args: None)
    monkeypatch.setattr(subnet, "score", lambda model, batches, *args: batches)

    class Data:
        def eval_batches(self, name, batch_size):
            asked.append(batch_size)
            return 0.0

    task = type("Task", (), {"score_name": "loss"})()
    subnet.evaluate_arch(net, net.space.smallest(), [], Data(), ["val"], task)
    subnet.evaluate_arch(net, net.space.smallest(), [], Data(), ["val"], task, batch_size=7)
    assert asked == [own, 7]
