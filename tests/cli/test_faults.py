"""The faults a new user hit in issue 25: each gives one line and exit 2, or works, and nothing is lost.

Each test here failed on the code before the fix it guards (Ray's are in tests/distributed/test_ray.py).
"""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.support import write_images
from tests.support import tiny_cfg
from tests.support import assert_refused, run_main, save_npz

from supernet import FinetuneConfig, SearchConfig, SupernetError, TrainConfig
from supernet.api import evaluate, export, finetune, run_search, train
from supernet.core.arch import Dimension
from supernet.core.space import SearchSpace

REPO = Path(__file__).resolve().parents[2]


# 1. an output folder that cannot be created
@pytest.mark.parametrize("command", ["train", "export", "search"])
def test_an_unwritable_out_is_one_line(trained, tmp_path, capsys, command):  # noqa: F811
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = {"train": ["train", "--steps", "2", "--samples", "100"],
            "export": ["export", trained, "--arch", "smallest"],
            "search": ["search", trained, "--evaluations", "6"]}[command]
    status, err = run_main([*argv, "--out", blocker / "run"], capsys)
    assert_refused(status, err, "cannot be created")
    assert blocker.read_text() == "not a folder"


# 5. fine-tuning repeats itself and resumes exactly
@pytest.mark.slow
def test_finetune_is_repeatable_and_resumes_exactly(trained, tmp_path):  # noqa: F811
    source = export(trained, "smallest", tmp_path / "export", onnx=False)
    config = FinetuneConfig(steps=6, checkpoint_every=2, calib_batches=1, device="cpu")
    runs = [finetune(source, tmp_path / name, config=config, onnx=False) for name in ("a", "b")]
    first = [json.loads((run / "log.jsonl").read_text().splitlines()[0]) for run in runs]
    assert first[0]["loss/subnet"] == first[1]["loss/subnet"]
    cut = tmp_path / "b"
    for folder in sorted((cut / "checkpoints").glob("step-*"))[1:]:
        import shutil
        shutil.rmtree(folder)  # as if killed after step 4's checkpoint was written
    finetune(None, cut, resume=True, onnx=False)
    rows = [json.loads(line) for line in (cut / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(6))
    from safetensors.torch import load_file
    a, b = load_file(str(runs[0] / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


# 6. one class is no classification task
def test_one_class_data_is_refused(tmp_path, capsys):
    write_images(tmp_path / "img" / "train", "RGB", per_class=6, classes=("only",))
    status, err = run_main(["train", "--data", f"imagefolder:{tmp_path / 'img'}", "--variant", "tiny2d", "--steps", "2",
                            "--batch-size", "4", "--data-workers", "0", "--out", tmp_path / "r"], capsys)
    assert_refused(status, err, "has 1 class; a classifier needs at least 2")
    assert not (tmp_path / "r").exists()


# 7. a run killed before its first checkpoint: the advice leads somewhere
@pytest.mark.slow
def test_a_run_without_checkpoint_is_restarted_with_overwrite(npz_data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {}}))
    (run / "checkpoints").mkdir()
    status, err = run_main(["train", "--data", npz_data, "--variant", "tiny", "--out", run], capsys)
    assert_refused(status, err, "--overwrite starts it again")
    status, err = run_main(["train", "--resume", "--out", run], capsys)
    assert status == 2 and len(err) == 1 and ("--overwrite instead of --resume" in err[0] or "config" in err[0])
    status, err = run_main(["train", "--data", npz_data, "--variant", "tiny", "--steps", "2", "--batch-size", "32",
                            "--calib-batches", "1", "--no-tensorboard", "--out", run, "--overwrite"], capsys)
    assert status == 0


@pytest.mark.slow
def test_resume_of_a_started_run_without_checkpoint_names_overwrite(npz_data, tmp_path):
    run = train(tiny_cfg(npz_data, steps=2), tmp_path / "run")
    import shutil
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(SupernetError, match="holds no checkpoint.*--overwrite instead of --resume"):
        train(tiny_cfg(npz_data, steps=2), run, resume=True)


# 9, 10. data that cannot mean what it says
def test_labels_with_empty_classes_and_non_finite_inputs_are_refused(tmp_path):
    from supernet.data.load import load_data
    x = np.random.default_rng(0).random((40, 12))
    with pytest.raises(SupernetError, match=r"labels run from 5 to 8 but classes \[0, 1, 2, 3, 4\] have no example"):
        load_data(save_npz(tmp_path / "shifted.npz", x, 5 + np.arange(40) % 4))
    x[7, 3] = np.nan
    with pytest.raises(SupernetError, match="1 NaN or infinite values \\(the first in row 7\\)"):
        load_data(save_npz(tmp_path / "nan.npz", x, np.arange(40) % 3))
    text = tmp_path / "table.npz"
    text.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(SupernetError, match="is not an .npz file") as err:
        load_data(str(text))
    assert "pickle" not in str(err.value)


# 11. the Python API's wrong types
def test_the_api_names_wrong_types(trained, tmp_path):  # noqa: F811
    with pytest.raises(SupernetError, match="--data must be text, got 123"):
        train(TrainConfig(data=123), tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with pytest.raises(SupernetError, match="an arch is an Arch, a dict"):
        evaluate(trained, [None], splits=["val"], calib_batches=1, device="cpu")
    rows = evaluate(trained, "largest", splits=["val"], calib_batches=1, device="cpu")
    assert len(rows) == 1 and rows == evaluate(trained, ["largest"], splits=["val"], calib_batches=1, device="cpu")


# 12. a search that runs out of archs says so
@pytest.mark.slow
def test_a_search_that_exhausts_its_budget_says_how_many_archs_fit():
    space = SearchSpace([Dimension("width", (16, 24, 32, 48, 64)), Dimension("depth", (1, 2, 3, 4))])
    costs = {"flops": lambda a: a["width"] * a["depth"]}
    result = run_search(space, lambda a: {"accuracy": a["width"] * a["depth"] / 256}, SearchConfig(
        budgets={"flops": 50}, evaluations=12, initial=3, per_round=3, uncertain=1, generations=3, population=8),
        costs=costs, tensorboard=False)
    fit = sum(costs["flops"](space.make({"width": w, "depth": d})) <= 50 for w in (16, 24, 32, 48, 64)
              for d in (1, 2, 3, 4))
    assert len(result.evaluations) <= fit + 3 < 12  # the baselines may be over budget
    assert any(f"stopped after {len(result.evaluations)} of 12 evaluations" in w for w in result.warnings)


# 13. smaller ones
@pytest.mark.slow
def test_search_interrupt_names_the_resume_command(trained, tmp_path):  # noqa: F811
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "supernet.cli", "search", str(trained), "--evaluations", "200",
                             "--calib-batches", "1", "--out", str(out), "--no-progress", "--threads", "1"],
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "evaluations.csv").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("error: interrupted: every finished evaluation is saved")
    assert f"supernet search --resume --out {out}" in lines[-1]


def test_small_faults(trained, tmp_path, capsys):  # noqa: F811
    status, err = run_main(["search", trained, "--max-flops", "-3M", "--out", tmp_path / "s"], capsys)
    assert_refused(status, err, "--max-flops must be a positive number, got '-3M'")
    assert "/data/" in (REPO / ".gitignore").read_text().splitlines()
    out = export(trained, "smallest", tmp_path / "e", onnx=False)
    note = json.loads((out / "arch.json").read_text())["input_note"]
    assert "input_shape is what the exported model takes" in note
    help_text = subprocess.run([sys.executable, "-m", "supernet.cli", "train", "--help"], capture_output=True,
                               text=True, cwd=REPO).stdout
    assert "sandwich + KL distillation" in help_text and "alpha-divergence  " not in help_text


def test_corrupt_image_advice_fits_a_run_without_checkpoint(tmp_path):
    from supernet.data.imagefolder import _checked

    class Loader:
        def __iter__(self):
            yield torch.zeros(1), torch.zeros(1), ["img.jpg: OSError: truncated"]
    with pytest.raises(SupernetError, match="then run the command again \\(with --resume when a checkpoint was saved\\)"):
        next(_checked(Loader()))
