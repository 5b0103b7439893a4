"""Issue 32, items 2, 3 and 9 on small local models: a resumed LLM run re-checks its base model,
generation latency refuses prompts beyond the model's positions, and ``extract`` works with tied
embeddings (each failed before the fix)."""
import json
import shutil

import pytest
import torch

from search_spaces.llm_lora.testing import train_tokenizer
from tests.spaces.test_llm_inputs import train_argv
from tests.support import assert_refused, run_main
from tests.support.llm import TEXT, model_dir, supernet_over


def stopped_run(tmp_path, model, corpus, capsys):
    """A run of 4 steps stopped after its checkpoint at step 2 (the later ones removed)."""
    out = tmp_path / "run"
    argv = train_argv(model, corpus, out, "--checkpoint-every", "2")
    argv[argv.index("--steps") + 1] = "4"
    assert run_main(argv, capsys)[0] == 0
    for step in sorted((out / "checkpoints").glob("step-*"))[1:]:
        shutil.rmtree(step)
    return out


def resumed(out, capsys):
    capsys.readouterr()
    return run_main(["train", "--resume", "--out", out], capsys)


@pytest.mark.parametrize("change", ["tokenizer", "config"])
def test_resume_refuses_a_changed_base_model(tmp_path, tokenizer, corpus, capsys, change):
    model = model_dir(tmp_path, tokenizer, hidden=16, intermediate=32)
    out = stopped_run(tmp_path, model, corpus, capsys)
    if change == "tokenizer":
        train_tokenizer(TEXT[::-1] + ["while True:\n    pass\n"], vocab_size=300).save_pretrained(model)
    else:
        config = json.loads((tmp_path / "llama" / "config.json").read_text())
        (tmp_path / "llama" / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-3}))
    status, err = resumed(out, capsys)
    assert_refused(status, err, "changed since this supernet was trained")
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-0000002"]  # nothing trained on


def test_resume_with_the_same_base_continues(tmp_path, tokenizer, corpus, capsys):
    out = stopped_run(tmp_path, model_dir(tmp_path, tokenizer, hidden=16, intermediate=32), corpus, capsys)
    status, err = resumed(out, capsys)
    assert status == 0, err
    assert (out / "checkpoints" / "step-0000004").is_dir()


def test_generation_beyond_the_models_positions_is_refused(tmp_path, tokenizer, corpus, capsys):
    model = model_dir(tmp_path, tokenizer, hidden=16, intermediate=32, max_positions=40)
    run = tmp_path / "run"
    assert run_main(train_argv(model, corpus, run), capsys)[0] == 0
    measure = ["latency", "measure", run, "--arch", "smallest", "--mode", "generate", "--repeats", "3",
               "--warmup", "0", "--rounds", "1", "--threads", "1"]
    for tokens, total in ((["--prefill-tokens", "41", "--decode-tokens", "1"], 42),
                          (["--prefill-tokens", "30", "--decode-tokens", "16"], 46)):
        capsys.readouterr()
        assert_refused(*run_main([*measure, *tokens], capsys), f"= {total} tokens is above the model's "
                                                                "max_position_embeddings (40)")
    status, err = run_main([*measure, "--prefill-tokens", "24", "--decode-tokens", "16"], capsys)
    assert status == 0, err
    capsys.readouterr()
    status, err = run_main(["search", run, "--objectives", "loss,latency", "--target", "cpu", "--latency-mode",
                            "generate", "--prefill-tokens", "400", "--evaluations", "5", "--out", tmp_path / "s"],
                           capsys)
    assert_refused(status, err, "--prefill-tokens 400 + --decode-tokens 32 = 432 tokens is above")
    assert not (tmp_path / "s").exists()


def test_extract_with_tied_embeddings(tmp_path, tokenizer):
    path = model_dir(tmp_path, tokenizer, "qwen2", hidden=32, intermediate=64, tie_word_embeddings=True)
    model = supernet_over(path)
    assert model.base.config.tie_word_embeddings
    ids = torch.randint(0, len(tokenizer), (2, 12), generator=torch.Generator().manual_seed(0))
    for arch in (model.space.smallest(), model.space.largest()):
        static = model.extract(arch)
        with torch.no_grad():
            torch.testing.assert_close(static(ids), model(ids, arch), atol=1e-4, rtol=1e-4)
        hf = static.model
        assert torch.equal(hf.lm_head.weight, hf.get_input_embeddings().weight)  # the head is the embedding


@pytest.mark.parametrize("layers, depths", [(2, (1, 2)), (1, None)])
def test_the_default_variant_fits_a_shallow_model(tmp_path, tokenizer, layers, depths):
    """The ``default`` variant skips up to 2 layers; over a 2-layer model that is 1, over 1 layer none
    (this raised ``max_skip must be in [0, 1]`` before)."""
    from dataclasses import replace as replaced

    from supernet.core.registry import get_space, space_config
    cfg = replaced(space_config("llm_lora", "default"), model=model_dir(tmp_path, tokenizer, layers=layers))
    assert cfg.max_skip == layers - 1
    dims = {d.name: d.choices for d in get_space("llm_lora").build_space(cfg).dimensions}
    assert dims.get("depth") == depths
