"""What the llm_lora space reads from the user's model folder: bad folders are refused in one line
(exit 2, nothing written), the identity hash covers the tokenizer and is cached, and evaluation
computes through the adapters without a merged copy of the base.

The four refusals failed on the code before issue 22: a 40-line traceback for a damaged
``model.safetensors``, "0 blocks of 65 tokens" without tokenizer files, a ``--seq-len`` above
``max_position_embeddings`` accepted, and a changed tokenizer silently moving the loss.
"""
import json
import os
import shutil

import pytest
import torch
from tests.support.llm import TEXT, model_dir, supernet_over
from tests.support import assert_refused, run_main

from search_spaces.llm_lora.testing import train_tokenizer

pytestmark = pytest.mark.slow  # every test here takes seconds: make test-fast leaves them out

TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def train_argv(model, corpus, out, *extra):
    return ["train", "--space", "llm_lora", "--variant", "tiny", "--model", model, "--data", f"text:{corpus}",
            "--seq-len", "16", "--steps", "2", "--batch-size", "4", "--optimizer", "adamw", "--lr", "1e-2",
            "--warmup-steps", "1", "--no-progress", "--no-tensorboard", "--threads", "1", "--out", out, *extra]


def refused(argv, capsys, pattern):
    capsys.readouterr()  # what setting up printed (save_pretrained's progress bars)
    assert_refused(*run_main(argv, capsys), pattern)


def copy_model(src, dst, skip=()):
    shutil.copytree(src, dst, ignore=lambda folder, names: [n for n in names if n in skip])
    return str(dst)


def test_a_damaged_weight_file_is_one_line(tmp_path, tokenizer, corpus, capsys):
    bad = copy_model(model_dir(tmp_path, tokenizer), tmp_path / "bad")
    weights = tmp_path / "bad" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # cut short, as by a failed download
    refused(train_argv(bad, corpus, tmp_path / "run"), capsys, "cannot load the base model")
    assert not (tmp_path / "run").exists()


def test_a_folder_without_tokenizer_files_is_one_line(tmp_path, tokenizer, corpus, capsys):
    bare = copy_model(model_dir(tmp_path, tokenizer), tmp_path / "bare", skip=TOKENIZER)
    refused(train_argv(bare, corpus, tmp_path / "run"), capsys, "tokenizer")
    assert not (tmp_path / "run").exists()


def test_seq_len_above_the_models_positions_is_one_line(tmp_path, tokenizer, corpus, capsys):
    short = model_dir(tmp_path, tokenizer, max_positions=12)
    refused(train_argv(short, corpus, tmp_path / "run"), capsys, "max_position_embeddings (12)")
    assert not (tmp_path / "run").exists()


def test_a_tokenizer_changed_after_training_is_refused(tmp_path, tokenizer, corpus, capsys):
    model = copy_model(model_dir(tmp_path, tokenizer), tmp_path / "model")
    assert run_main(train_argv(model, corpus, tmp_path / "run"), capsys)[0] == 0
    train_tokenizer(TEXT[::-1] + ["while True:\n    pass\n"], vocab_size=300).save_pretrained(model)
    changed = "changed since this supernet was trained"
    refused(["eval", tmp_path / "run", "--arch", "smallest", "--split", "val"], capsys, changed)
    refused(["export", tmp_path / "run", "--arch", "smallest", "--out", tmp_path / "exp"], capsys, changed)
    assert not (tmp_path / "exp").exists()


def test_identity_hash_is_read_once_then_checked_by_size_and_mtime(tmp_path, tokenizer, monkeypatch):
    from search_spaces.hf_identity import identity_files, legacy_hash, matches, model_hash
    monkeypatch.setenv("SUPERNET_CACHE", str(tmp_path / "cache"))
    folder = model_dir(tmp_path, tokenizer)
    assert {"tokenizer.json", "config.json", "model.safetensors"} <= {p.name for p in identity_files(folder)}
    first = model_hash(folder)
    target = tmp_path / "llama" / "tokenizer.json"
    stat, data = target.stat(), target.read_bytes()
    target.write_bytes(data.replace(b'"', b"'", 1))  # same size, other bytes, then the old mtime back
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_hash(folder) == first  # size and mtime unchanged: the cached file hash answers
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert model_hash(folder) != first  # a newer file is read again
    assert matches(folder, legacy_hash(folder))[0]  # runs saved before the tokenizer was covered still load


def test_eval_computes_through_the_adapters_without_a_merged_copy(tmp_path, tokenizer):
    from supernet.core.task import make_task
    from supernet.evaluation.subnet import evaluate_arch, score
    model = supernet_over(model_dir(tmp_path, tokenizer))
    ids = torch.randint(0, model.config.vocab_size, (6, 12), generator=torch.Generator().manual_seed(0))
    data = type("Data", (), {"eval_batches": lambda self, split, size: zip(ids.split(3), ids.roll(-1, 1).split(3))})()
    arch, task = model.space.sample(__import__("numpy").random.default_rng(0)), make_task("language_model")
    merged = score(model.extract(arch), data.eval_batches("val", 3), task)
    model.extract = lambda arch: pytest.fail("evaluation built a merged copy")
    result = evaluate_arch(model, arch, [], data, ["val"], task)
    assert abs(result["val_loss"] - merged) <= 1e-5 and result["params"] == model.params(arch)
    assert json.dumps(result)  # plain numbers
