"""``supernet train --init RUN``: a new run starts from another run's weights (same space), the
classifier replaced when the classes differ; every mismatch is one line with nothing written."""
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from supernet.api import resume_training, train
from supernet.cli.main import main
from supernet.core.errors import SupernetError
from supernet.io.checkpoint import load_checkpoint, resolve_checkpoint
from supernet.training.train_config import TrainConfig
from supernet.training.init import load_init
from supernet.training.setup import build_setup, prepare_model, resolved_config

HEAD = ["head.classifier.bias", "head.classifier.weight"]


def toy(path, classes, channels=None, seed=0, n=200, length=20):
    """A learnable 1-D set: class k is a sine of frequency k + 1 (plus a phase per set), ``classes`` classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    t = np.linspace(0, 1, length)
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t[None] + seed) + 0.3 * rng.standard_normal((n, length))
    if channels:
        x = np.repeat(x[:, None], channels, axis=1)
    np.savez(path, x=x.astype(np.float32), y=y)
    return str(path)


def cfg(data, **kw):
    base = dict(data=data, variant="tiny", steps=8, batch_size=32, lr=0.05, warmup_steps=2, checkpoint_every=4,
                calib_batches=1, tensorboard=False, progress=False, seed=3)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny 1-D supernet trained 8 steps on a 3-class set."""
    root = tmp_path_factory.mktemp("init")
    return train(cfg(toy(root / "a.npz", 3), steps=8), root / "source")


def loaded(c):
    """The run's supernet after the init weights are loaded, before step 0 (and its meta)."""
    setup = build_setup(resolved_config(c), c.placement())
    prepare_model(setup, c, 0)
    return setup.model, setup.meta


def test_init_loads_every_tensor_then_trains_and_records_its_source(source, tmp_path):
    data = toy(tmp_path / "b.npz", 3, seed=1)
    model, _ = loaded(cfg(data, variant=None, init=str(source)))
    want, _ = load_checkpoint(source)
    got = model.state_dict()
    assert set(got) == set(want.state_dict()) and any("running_mean" in k for k in got)  # BN statistics included
    for name, tensor in want.state_dict().items():
        assert torch.equal(got[name], tensor), name
    run = train(cfg(data, variant=None, init=str(source)), tmp_path / "run")
    saved = json.loads((run / "config.json").read_text())
    ckpt = resolve_checkpoint(source)
    assert saved["variant"] == "tiny" and saved["init"]["checkpoint"] == str(ckpt.resolve())
    assert saved["init"]["run"] == str(source.resolve()) and saved["init"]["step"] == 8
    assert saved["init"]["weights_sha256"] == hashlib.sha256((ckpt / "weights.safetensors").read_bytes()).hexdigest()
    assert saved["init"]["replaced"] == [] and saved["train"]["init"] == str(ckpt.resolve())
    events = [json.loads(line) for line in open(run / "log.jsonl")]
    assert events[0]["event"] == "init" and [e["step"] for e in events if "loss/largest" in e] == list(range(8))
    trained, _ = load_checkpoint(run)
    assert not torch.equal(trained.state_dict()["head.classifier.weight"], got["head.classifier.weight"])


def test_other_classes_replace_the_classifier_with_a_fresh_one(source, tmp_path, capsys):
    data = toy(tmp_path / "c.npz", 5, seed=2)
    model, meta = loaded(cfg(data, init=str(source)))
    fresh = build_setup(resolved_config(cfg(data)), TrainConfig().placement()).model.state_dict()
    want = load_checkpoint(source)[0].state_dict()
    assert meta["init"]["replaced"] == HEAD and meta["init"]["classes"] == [3, 5]
    for name, tensor in model.state_dict().items():
        if name in HEAD:
            assert tensor.shape[0] == 5 and torch.equal(tensor, fresh[name]), name  # the seed's fresh head
        else:
            assert torch.equal(tensor, want[name]), name
    run = train(cfg(data, init=str(source), progress=True), tmp_path / "run")
    assert "classifier replaced (3 -> 5 classes" in capsys.readouterr().err
    assert load_checkpoint(run)[1]["step"] == 8


def test_a_resumed_init_run_continues_from_its_own_checkpoint(source, tmp_path):
    data = toy(tmp_path / "d.npz", 4, seed=4)
    full = train(cfg(data, init=str(source)), tmp_path / "full")
    part = train(cfg(data, init=str(source)), tmp_path / "part")
    shutil.rmtree(part / "checkpoints" / "step-0000008")
    lines = [line for line in open(part / "log.jsonl") if json.loads(line).get("step", -1) < 4
             and json.loads(line).get("event") != "init"]
    (part / "log.jsonl").write_text("".join(lines))
    resume_training(part)
    a, b = load_checkpoint(full)[0].state_dict(), load_checkpoint(part)[0].state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def refused(c, out, pattern):
    with pytest.raises(SupernetError, match=pattern) as info:
        train(c, out)
    assert "\n" not in str(info.value) and not out.exists()


def test_another_space_variant_or_tensor_shape_is_one_line_and_writes_nothing(source, tmp_path):
    data = toy(tmp_path / "e.npz", 3)
    refused(cfg(data, space="elastic_mlp", variant=None, init=str(source)), tmp_path / "r1",
            "space 'mobilenet', this run's --space is 'elastic_mlp': add --space mobilenet")
    refused(cfg(data, variant="mnist1d", init=str(source)), tmp_path / "r2", "variant 'tiny'.*not --variant 'mnist1d'")
    two = toy(tmp_path / "f.npz", 3, channels=2)
    refused(cfg(two, variant=None, init=str(source)), tmp_path / "r3", r"tensor 'stem.*has shape \(8, 1, 3\) in the init")
    refused(cfg(data, init=str(tmp_path / "nowhere")), tmp_path / "r4", "does not exist")
    refused(cfg(data, init=str(tmp_path)), tmp_path / "r5", "holds no checkpoint")


def test_a_damaged_or_foreign_init_checkpoint_is_one_line(source, tmp_path):
    data = toy(tmp_path / "g.npz", 3)
    ckpt = resolve_checkpoint(source)
    cut = tmp_path / "cut"
    shutil.copytree(ckpt, cut)
    blob = (cut / "weights.safetensors").read_bytes()
    (cut / "weights.safetensors").write_bytes(blob[:len(blob) // 2])
    refused(cfg(data, init=str(cut)), tmp_path / "r1", "corrupted or not safetensors")
    less = tmp_path / "less"
    shutil.copytree(ckpt, less)
    state = load_file(str(less / "weights.safetensors"))
    state["extra.weight"] = state.pop("head.classifier.bias")
    save_file(state, str(less / "weights.safetensors"))
    refused(cfg(data, init=str(less)), tmp_path / "r2", "tensor 'head.classifier.bias' is missing from the init")
    plain = tmp_path / "plain"
    shutil.copytree(ckpt, plain)
    (plain / "config.json").write_text(json.dumps({"step": 3}))
    refused(cfg(data, init=str(plain)), tmp_path / "r3", "not a supernet checkpoint")


def test_weights_changed_after_the_run_was_planned_are_refused(source, tmp_path):
    data = toy(tmp_path / "h.npz", 3)
    setup = build_setup(resolved_config(cfg(data, init=str(source))), TrainConfig().placement())
    record = {**setup.meta["init"], "weights_sha256": "0" * 64}
    with pytest.raises(SupernetError, match="changed since the run started"):
        load_init(setup.model, record)


def test_init_and_resume_together_are_refused(source, tmp_path, capsys):
    data = toy(tmp_path / "i.npz", 3)
    assert main(["train", "--init", str(source), "--resume", "--out", str(tmp_path / "x"), "--data", data]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init starts a new run" in err[0] and "give one of them" in err[0]
    plain = train(cfg(data), tmp_path / "plain")
    before = sorted(p.name for p in (plain / "checkpoints").iterdir())
    with pytest.raises(SupernetError, match="give one of them"):
        train(cfg(data, init=str(source)), plain, resume=True)
    assert sorted(p.name for p in (plain / "checkpoints").iterdir()) == before


def test_cli_trains_from_init(source, tmp_path):
    data = toy(tmp_path / "j.npz", 4)
    out = tmp_path / "cli"
    assert main(["train", "--init", str(source), "--data", data, "--steps", "2", "--batch-size", "32",
                 "--no-tensorboard", "--no-progress", "--calib-batches", "1", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["init"]["classes"] == [3, 4]


def classifier_variants():
    """Every registered classification space's test variants (mobilenet 1-D / 2-D, resnet, ...)."""
    from supernet.core.registry import get_space
    from tests.support import tiny_variants
    return [(s, v) for s, v in tiny_variants() if get_space(s).task == "classification"]


@pytest.mark.parametrize("space,variant", classifier_variants())
def test_every_classifier_space_gets_a_fresh_head_for_other_classes(space, variant, tmp_path):
    """No training: a checkpoint of the variant fitted to 7 classes, planned and loaded into one fitted to 3."""
    from supernet.core.data_info import DataInfo
    from supernet.core.registry import build_supernet, config_to_dict, get_space, space_config
    from supernet.io.checkpoint import write_checkpoint
    from supernet.training.init import InitSource
    entry = get_space(space)
    probe = build_supernet(space, space_config(space, variant)).space
    x = probe.example_input(probe.largest(), 2, torch.Generator().manual_seed(0))  # images, signals or token ids
    tokens = None if x.is_floating_point() else int(x.max())
    options = entry.make_options({"seq_len": x.shape[1]} if tokens is not None else {})  # a text classifier's length
    fitted = {n: entry.fitted(space_config(space, variant), DataInfo("toy", tuple(x.shape[1:]), n, tokens), options)
              for n in (7, 3)}
    torch.manual_seed(0)
    source = build_supernet(space, fitted[7])
    meta = {"space": space, "variant": variant, "space_config": config_to_dict(fitted[7])}
    write_checkpoint(tmp_path, 5, source, meta, None)
    torch.manual_seed(1)
    model = build_supernet(space, fitted[3])
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    record = InitSource.read(str(tmp_path), space, None).plan(model, 3)
    load_init(model, record)
    assert record["classes"] == [7, 3] and 1 <= len(record["replaced"]) <= 2
    for name, tensor in model.state_dict().items():
        want = fresh[name] if name in record["replaced"] else source.state_dict()[name]
        assert torch.equal(tensor, want), name
