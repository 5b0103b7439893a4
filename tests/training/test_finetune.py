"""supernet finetune: writes a loadable export, resumes exactly, refuses a mismatched export."""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.support import tiny_cfg

from supernet.api import finetune, train  # finetune: the front door, which decides its placement
from supernet.cli.main import main
from supernet.core.errors import SupernetError
from supernet.io.checkpoint import resolve_checkpoint
from supernet.evaluation.recalibrated import export_from_checkpoint
from supernet.io.export import load_exported
from supernet.training.train_config import FinetuneConfig


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny trained supernet and an export of its smallest subnet."""
    root = tmp_path_factory.mktemp("ft")
    rng = np.random.default_rng(0)
    np.savez(root / "d.npz", x=rng.standard_normal((200, 20)).astype(np.float32), y=rng.integers(0, 4, 200))
    run = train(tiny_cfg(str(root / "d.npz"), steps=6), root / "run")
    export = export_from_checkpoint(run, "smallest", root / "small", onnx=False)
    return {"run": run, "export": export}


def cfg(**kw):
    return FinetuneConfig(**{"steps": 6, "checkpoint_every": 2, "lr": 0.05, **kw})


def test_finetune_writes_a_loadable_export_that_changed(runs, tmp_path):
    out = finetune(runs["export"], tmp_path / "ft", config=cfg(), onnx=False)
    assert {"model.safetensors", "config.json", "arch.json", "finetune.json", "log.jsonl"} <= {p.name for p in out.iterdir()}
    net = load_exported(out)
    x = torch.randn(3, 1, json.loads((out / "arch.json").read_text())["input_shape"][-1])
    assert net(x).shape == (3, 4)
    before, after = load_file(str(runs["export"] / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    meta = json.loads((out / "arch.json").read_text())
    assert meta["finetuned"]["config"]["steps"] == 6
    assert meta["checkpoint"] == str(resolve_checkpoint(runs["run"]).resolve())  # named by the export, found by it
    steps = [json.loads(line)["step"] for line in open(out / "log.jsonl")]
    assert steps == list(range(6))


def test_finetune_resumes_exactly(runs, tmp_path):
    full = finetune(runs["export"], tmp_path / "full", config=cfg(), onnx=False)
    part = finetune(runs["export"], tmp_path / "part", config=cfg(), onnx=False)
    shutil.rmtree(part / "checkpoints" / "step-0000006")  # as if killed after the step-4 checkpoint
    for name in ("model.safetensors", "config.json", "arch.json"):
        (part / name).unlink()
    lines = [line for line in open(part / "log.jsonl") if json.loads(line)["step"] < 4]
    (part / "log.jsonl").write_text("".join(lines))
    finetune(None, part, resume=True, onnx=False)
    a, b = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_finetune_refuses_an_export_of_another_supernet(runs, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(runs["export"], bad)
    config = json.loads((bad / "config.json").read_text())
    config["space_config"]["widths"] = [8, 24]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(SupernetError, match="does not match the supernet"):
        finetune(bad, tmp_path / "ft", config=cfg())
    assert not (tmp_path / "ft").exists()
    meta = json.loads((runs["export"] / "arch.json").read_text())
    other_data = tmp_path / "other"
    shutil.copytree(runs["export"], other_data)
    (other_data / "arch.json").write_text(json.dumps({**meta, "data": {**meta["data"], "train": 1}}))
    with pytest.raises(SupernetError, match="trained on other data"):
        finetune(other_data, tmp_path / "ft2", config=cfg())


def test_cli_finetune_mismatch_is_one_line_and_nonzero(runs, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(runs["export"], bad)
    config = json.loads((bad / "config.json").read_text())
    config["space"] = "transformer"
    (bad / "config.json").write_text(json.dumps(config))
    assert main(["finetune", str(bad), "--out", str(tmp_path / "ft"), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "does not match" in err and "\n" not in err
    assert main(["finetune", str(runs["export"]), "--out", str(tmp_path / "ok"), "--steps", "2", "--no-onnx"]) == 0
    assert load_exported(tmp_path / "ok") is not None


def test_front_door_finetune_is_the_function():
    import supernet
    from supernet import finetune as front
    from supernet.api import finetune as api_finetune
    assert callable(front) and front is api_finetune and callable(supernet.finetune)


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_finetune_kd_chooses_labels_kl_or_alpha(runs, tmp_path):
    tuned = {kd: _weights(finetune(runs["export"], tmp_path / kd, config=cfg(kd=kd), onnx=False))
             for kd in ("kl", "none", "alpha")}
    for a, b in (("kl", "none"), ("kl", "alpha"), ("none", "alpha")):
        assert any(not torch.equal(tuned[a][k], tuned[b][k]) for k in tuned[a]), (a, b)
    logs = {kd: [json.loads(line) for line in open(tmp_path / kd / "log.jsonl")] for kd in tuned}
    assert all("kd/mean_divergence" not in r for r in logs["none"])  # labels only: nothing distils
    assert all("kd/mean_divergence" in r for r in logs["kl"] + logs["alpha"])
    assert json.loads((tmp_path / "none" / "finetune.json").read_text())["config"]["kd"] == "none"
    with pytest.raises(SupernetError, match="needs a distillation"):
        finetune(runs["export"], tmp_path / "bad", config=cfg(kd="none", teacher=str(runs["run"])))
    with pytest.raises(SupernetError, match="--kd must be"):
        finetune(runs["export"], tmp_path / "bad", config=cfg(kd="alpha:0.5"))
    assert not (tmp_path / "bad").exists()


def test_finetune_teacher_run_is_its_largest_and_an_export_teacher_is_used(runs, tmp_path):
    default = _weights(finetune(runs["export"], tmp_path / "largest", config=cfg(), onnx=False))
    same = _weights(finetune(runs["export"], tmp_path / "run", config=cfg(teacher=str(runs["run"])), onnx=False))
    assert all(torch.equal(default[k], same[k]) for k in default)  # the run's largest is the default teacher
    small = _weights(finetune(runs["export"], tmp_path / "small", config=cfg(teacher=str(runs["export"])),
                              onnx=False))
    assert any(not torch.equal(default[k], small[k]) for k in default)


def test_finetune_refuses_a_teacher_of_another_space_or_variant_in_one_line(runs, tmp_path, capsys):
    other = tmp_path / "other-export"
    shutil.copytree(runs["export"], other)
    config = json.loads((other / "config.json").read_text())
    config["space_config"]["widths"] = [8, 24]
    (other / "config.json").write_text(json.dumps(config))
    assert main(["finetune", str(runs["export"]), "--teacher", str(other), "--out", str(tmp_path / "ft"),
                 "--steps", "2", "--no-onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "another space or variant" in err and "\n" not in err
    assert not (tmp_path / "ft").exists()
    run = tmp_path / "other-run"
    shutil.copytree(runs["run"], run)
    meta_path = resolve_checkpoint(run) / "config.json"
    meta = json.loads(meta_path.read_text())
    meta["space_config"]["widths"] = [8, 24]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SupernetError, match="another space or variant"):
        finetune(runs["export"], tmp_path / "ft2", config=cfg(teacher=str(run)))
    meta = {**json.loads((runs["export"] / "arch.json").read_text())}
    shutil.copytree(runs["export"], tmp_path / "other-data")
    (tmp_path / "other-data" / "arch.json").write_text(json.dumps({**meta, "data": {**meta["data"], "train": 1}}))
    with pytest.raises(SupernetError, match="other data"):
        finetune(runs["export"], tmp_path / "ft3", config=cfg(teacher=str(tmp_path / "other-data")))
