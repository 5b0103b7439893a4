"""The faults a new user hits (issue 11): nothing lost, nothing silent.

Each test here failed on the code before the fix it guards.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.support import assert_one_line_error, assert_refused, cli, run_main, save_npz
from tests.support import step_losses, tiny_cfg

from supernet.api import resume_training, train
from supernet.cli.main import main
from supernet.core.errors import SupernetError
from supernet.data.load import load_data
from supernet.evaluation.recalibrated import export_from_checkpoint
from supernet.io.export import load_exported

REPO = Path(__file__).resolve().parents[2]



def tree(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}



# -- outputs never overwrite inputs --------------------------------------------------------
@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_export_and_search_out_overlapping_the_input_run_are_refused(trained, capsys, where):  # noqa: F811
    before = tree(trained)
    out = {"same": trained, "inside": trained / "export", "containing": trained.parent}[where]
    status, err = run_main(["export", trained, "--arch", "smallest", "--out", out, "--overwrite", "--no-onnx"], capsys)
    assert_refused(status, err, "overlaps the input")
    status, err = run_main(["search", trained, "--evaluations", 8, "--out", out, "--overwrite", "--no-progress"],
                           capsys)
    assert_refused(status, err, "overlaps the input")
    assert tree(trained) == before


@pytest.mark.parametrize("where", ["same", "containing"])
def test_train_out_overlapping_its_data_is_refused(tmp_path, capsys, where):
    data = tmp_path / "data"
    data.mkdir()
    npz = save_npz(data / "own.npz", np.zeros((40, 12)), np.zeros(40, dtype=int))
    out = {"same": data, "containing": tmp_path}[where]
    status, err = run_main(["train", "--data", npz, "--variant", "tiny", "--steps", 2, "--out", out, "--overwrite"],
                           capsys)
    assert_refused(status, err, "overlaps the input")
    assert Path(npz).exists()


@pytest.mark.slow
def test_export_from_search_inside_the_search_run_is_refused(trained, tmp_path, capsys):  # noqa: F811
    search = tmp_path / "search"
    assert main(["search", str(trained), "--evaluations", "6", "--initial", "1", "--per-round", "2",
                 "--uncertain", "1", "--generations", "2", "--population", "4", "--predictor", "ridge", "--out", str(search),
                 "--no-progress", "--no-tensorboard"]) == 0
    before = tree(search)
    status, err = run_main(["export", "--from-search", search, "--pick", "best-accuracy", "--out", search / "e",
                            "--no-onnx"], capsys)
    assert_refused(status, err, "overlaps the input")
    assert tree(search) == before
    assert main(["export", "--from-search", str(search), "--pick", "best-accuracy", "--out", str(tmp_path / "e"),
                 "--no-onnx"]) == 0
    picked = json.loads((tmp_path / "e" / "arch.json").read_text())["picked"]
    row = json.loads((search / "pareto.json").read_text())["picks"]["best-accuracy"]
    assert picked["accuracy"] == row["accuracy"] and picked["split"] == "val" and picked["pick"] == "best-accuracy"


# -- interruptions and resume ----------------------------------------------------------------
@pytest.mark.slow
def test_sigint_saves_a_resumable_checkpoint_and_resume_logs_each_step_once(tmp_path):
    rng = np.random.default_rng(0)
    data = save_npz(tmp_path / "d.npz", rng.standard_normal((1000, 12)), rng.integers(0, 3, 1000))
    run = tmp_path / "run"
    args = ["train", "--data", data, "--variant", "tiny", "--steps", 60, "--batch-size", 16, "--threads", 1,
            "--checkpoint-every", 1000, "--calib-batches", 1, "--no-tensorboard", "--out", run]
    proc = subprocess.Popen([sys.executable, "-m", "supernet.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = run / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or log.read_text().count('"loss/largest"') < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert "interrupted: checkpoint saved at step" in errors[0] and "--resume" in errors[0]
    saved = [p.name for p in (run / "checkpoints").glob("step-*")]
    assert len(saved) == 1, saved
    step = int(saved[0].split("-")[1])
    assert 3 <= step < 60 and [r["step"] for r in step_losses(run)] == list(range(step))
    resumed = cli("train", "--resume", "--out", run)
    assert resumed.returncode == 0, resumed.stderr
    assert "train step 60/60" in resumed.stderr  # one progress line per N steps off a terminal
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss/largest" in r]
    assert steps == list(range(60))
    evals = [r["step"] for r in rows if "epoch" in r]
    assert evals == sorted(set(evals)) and evals[-1] == 60


@pytest.mark.slow
def test_resume_after_a_kill_logs_no_step_twice(npz_data, tmp_path):
    import shutil
    run = train(tiny_cfg(npz_data, steps=8, checkpoint_every=4), tmp_path / "run")
    shutil.rmtree(run / "checkpoints" / "step-0000008")  # killed after step 8 was logged, before it was saved
    resume_training(run)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss/largest" in r] == list(range(8))


@pytest.mark.slow
def test_resume_removes_stale_temp_folders(npz_data, tmp_path):
    run = train(tiny_cfg(npz_data, steps=4, checkpoint_every=2), tmp_path / "run")
    stale = run / "checkpoints" / ".step-0000006.tmp-abc123"
    stale.mkdir()
    (stale / "weights.safetensors").write_bytes(b"half")
    cfg = json.loads((run / "config.json").read_text())
    cfg["train"]["steps"] = cfg["total_steps"] = 6
    (run / "config.json").write_text(json.dumps(cfg))
    resume_training(run)
    assert not stale.exists() and (run / "checkpoints" / "step-0000006").is_dir()


@pytest.mark.slow
def test_resume_with_other_options_is_refused(npz_data, tmp_path, capsys):
    run = train(tiny_cfg(npz_data, steps=2), tmp_path / "run")
    status, err = run_main(["train", "--resume", "--out", run, "--steps", 40], capsys)
    assert_refused(status, err, "drop --steps")
    assert [r["step"] for r in step_losses(run)] == [0, 1]


def test_failed_run_leaves_no_folder(tmp_path, capsys):
    images = save_npz(tmp_path / "img.npz", np.zeros((40, 1, 8, 8)), np.arange(40) % 3)
    status, err = run_main(["train", "--data", images, "--variant", "tiny", "--out", tmp_path / "r1"], capsys)
    assert_refused(status, err, "takes 1-D signals")
    signals = save_npz(tmp_path / "sig.npz", np.zeros((40, 12)), np.arange(40) % 3)
    status, err = run_main(["train", "--data", signals, "--variant", "tiny", "--batch-size", 500,
                            "--out", tmp_path / "r2"], capsys)
    assert_refused(status, err, "--batch-size 500 exceeds")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


# -- silent wrong results ------------------------------------------------------------------
def test_load_exported_refuses_input_of_the_wrong_length(trained, tmp_path):  # noqa: F811
    out = export_from_checkpoint(trained, "smallest", tmp_path / "e", onnx=False)
    meta = json.loads((out / "arch.json").read_text())
    net = load_exported(out)
    shape = meta["input_shape"]
    assert net(torch.zeros(2, *shape[1:])).shape[0] == 2
    with pytest.raises(SupernetError, match="takes inputs of shape"):
        net(torch.zeros(2, *shape[1:-1], shape[-1] + 4))
    assert meta["preprocessing"] and meta["arch"]


def test_channels_last_images_are_refused_with_the_transpose(tmp_path, capsys):
    path = save_npz(tmp_path / "nhwc.npz", np.zeros((40, 8, 8, 3)), np.arange(40) % 3)
    status, err = run_main(["train", "--data", path, "--out", tmp_path / "r"], capsys)
    assert_refused(status, err, "channels-last")
    assert "x.transpose(0, 3, 1, 2)" in err[0]
    assert not (tmp_path / "r").exists()
    assert load_data(save_npz(tmp_path / "nchw.npz", np.zeros((40, 3, 8, 8)), np.arange(40) % 3)).info().sample_shape \
        == (3, 8, 8)


@pytest.mark.parametrize("labels, found", [(np.arange(40) % 3 - 1, "-1"), (np.linspace(0, 2, 40), "0.05"),
                                           (np.full(40, np.nan), "nan")])
def test_labels_must_be_class_indices(tmp_path, labels, found):
    path = save_npz(tmp_path / "d.npz", np.zeros((40, 12)), labels)
    with pytest.raises(SupernetError, match="class indices") as info:
        load_data(path)
    assert found in str(info.value)


def test_split_without_its_labels_is_refused(tmp_path):
    path = save_npz(tmp_path / "d.npz", np.zeros((40, 12)), np.arange(40) % 3, x_val=np.zeros((5, 12)))
    with pytest.raises(SupernetError, match="x_val without y_val"):
        load_data(path)


@pytest.mark.slow
def test_relative_data_path_then_eval_from_another_folder(npz_data, tmp_path, capsys, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    save_npz(work / "own.npz", *np.load(npz_data).values())
    monkeypatch.chdir(work)
    assert main(["train", "--data", "own.npz", "--variant", "tiny", "--steps", "2", "--batch-size", "32",
                 "--calib-batches", "1", "--no-tensorboard", "--no-progress", "--out", "run"]) == 0
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["eval", str(work / "run"), "--arch", "smallest", "--split", "val"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["val_accuracy"] <= 1


# -- every numeric option checked as it is parsed -----------------------------------------------
# flag -> values that are legitimate (all others of 0, -1, nan, huge must be refused)
TRAIN_NUMBERS = {"samples": (), "val-fraction": (), "epochs": (), "steps": (), "batch-size": (), "lr": (),
                 "momentum": ("0",), "weight-decay": ("0",), "warmup-steps": ("0",), "label-smoothing": ("0",),
                 "num-random": ("0",), "alpha-min": ("-1",), "alpha-max": (), "alpha-clamp": (),
                 "grad-clip": ("0",), "seed": ("0",), "checkpoint-every": ("0",), "calib-batches": (),
                 "data-workers": ("0",), "threads": (), "seq-len": (), "grad-accum": (), "distill-weight": ("0",),
                 "warm-largest": ("0",), "grad-clip-value": ("0",)}
FUZZ = ("0", "-1", "nan", "inf", "1e30", "1000000000000", "-1e30")


def test_every_numeric_train_option_is_fuzzed():
    from dataclasses import fields

    from search_spaces.llm_lora.options import LlmLoraOptions
    from supernet.training.train_config import TrainConfig
    numeric = {f.name.replace("_", "-") for cls in (TrainConfig, LlmLoraOptions) for f in fields(cls)
               if f.type in ("int", "float", "int | None", "float | None")}
    assert numeric == set(TRAIN_NUMBERS)


@pytest.mark.parametrize("flag", sorted(TRAIN_NUMBERS))
def test_train_numeric_options_are_checked_before_any_folder(flag, tmp_path, capsys):
    for value in FUZZ:
        if value in TRAIN_NUMBERS[flag]:
            continue
        status, err = run_main(["train", f"--{flag}={value}", "--out", tmp_path / "r"], capsys)
        assert_refused(status, err, f"--{flag}")
        assert not (tmp_path / "r").exists(), (flag, value)


@pytest.mark.parametrize("argv", [
    ["eval", "RUN", "--arch", "smallest", "--calib-batches"],
    ["search", "RUN", "--threads"], ["search", "RUN", "--calib-batches"],
    *[["latency", action, "mobilenet", "--variant", "tiny", "--arch", "smallest", flag]
      for action in ("measure", "build") for flag in ("--threads", "--batch", "--repeats", "--rounds", "--unit-rounds")],
    ["latency", "measure", "mobilenet", "--arch", "smallest", "--warmup"],
    ["latency", "build", "mobilenet", "--archs"], ["latency", "build", "mobilenet", "--seed"]])
def test_other_numeric_options_are_checked_as_parsed(argv, tmp_path, capsys):
    argv = [str(tmp_path / "none") if a == "RUN" else a for a in argv]
    if argv[:2] == ["latency", "build"]:
        argv = [a for a in argv if a not in ("--arch", "smallest")]
    for value in ("-1", "nan", "1e30", "1000000000000") + (("0",) if argv[-1] not in ("--warmup", "--seed") else ()):
        status, err = run_main([*argv, value], capsys)
        assert_refused(status, err, f"argument {argv[-1]}")


def test_negative_budget_is_one_line_not_usage(tmp_path, capsys):
    status, err = run_main(["search", tmp_path / "none", "--max-flops", "-1M", "--out", tmp_path / "s"], capsys)
    assert_refused(status, err, "--max-flops")
    status, err = run_main(["search", "--no-such-flag"], capsys)
    assert_refused(status, err, "unrecognized arguments")


@pytest.mark.slow
def test_threads_minus_one_end_to_end(tmp_path):
    assert_one_line_error(cli("train", "--threads", "-1", "--out", tmp_path / "r"), "--threads must be >= 1")
    assert_one_line_error(cli("latency", "measure", "mobilenet", "--arch", "smallest", "--batch", "0"),
                          "argument --batch: must be >= 1")
    assert not (tmp_path / "r").exists()


# -- small things ----------------------------------------------------------------------------
def test_weights_get_the_same_mode_as_other_files(trained, tmp_path):  # noqa: F811
    from supernet.io.checkpoint import resolve_checkpoint
    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    out = export_from_checkpoint(trained, "smallest", tmp_path / "e", onnx=False)
    folders = [out, resolve_checkpoint(trained)]
    for path in [p for folder in folders for p in folder.iterdir()]:
        assert path.stat().st_mode & 0o777 == expected, path
    from supernet.io.files import atomic_file
    with atomic_file(tmp_path / "plot.png") as tmp:
        tmp.write_bytes(b"png")
    assert (tmp_path / "plot.png").stat().st_mode & 0o777 == expected


def test_license_is_the_apache_text_setup_cfg_names():
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert "license = Apache-2.0" in (REPO / "setup.cfg").read_text()


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["export", "--help"],
                                  ["search", "--help"], ["finetune", "--help"]])
def test_help_imports_no_torch(argv):
    code = ("import sys\nimport supernet\nfrom supernet.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nassert 'ray' not in sys.modules, 'ray imported'\n"
            % argv)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: supernet" in result.stdout, result.stderr
