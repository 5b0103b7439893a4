"""Issue 32.1: one writer per output folder. Two real processes race for one folder; the second is
refused in one line naming the folder and the holder; a SIGKILLed holder leaves nothing stuck."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supernet.core.registry import config_to_dict, space_config
from supernet.hardware.latency_table import table_path
from supernet.hardware.rounds import MeasureConfig
from supernet.io.claim import CLAIM, claim, release
from tests.support import assert_refused, run_main

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "supernet.cli"]


def start(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([*CLI, *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc, what, limit=300):
    """Poll ``condition`` while ``proc`` lives (a dead holder fails the test at once, not at a deadline)."""
    deadline = time.time() + limit
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        assert time.time() < deadline, what
        time.sleep(0.1)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.strip().splitlines()


def refused_by(lines, folder, holder):
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert f"{str(folder)!r} is in use by pid {holder.pid} " in lines[0], lines[0]


def test_two_trainings_race_for_one_folder_one_wins(tmp_path):
    args = ["train", "--variant", "tiny", "--steps", "40", "--threads", "1", "--no-progress", "--out", "same"]
    first = start(args, tmp_path)
    wait_for(lambda: (tmp_path / "same" / CLAIM).exists(), first, "the first run claims its folder")
    second = start(args, tmp_path)
    status, lines = finish(second)
    assert status == 2
    refused_by(lines, "same", first)
    assert finish(first)[0] == 0
    steps = [line for line in (tmp_path / "same" / "log.jsonl").read_text().splitlines() if '"loss/largest"' in line]
    assert len(steps) == 40  # one run's log, whole
    assert not (tmp_path / "same" / CLAIM).exists()  # released at the end


@pytest.mark.slow
def test_a_killed_training_leaves_its_folder_free(tmp_path):
    out = tmp_path / "run"
    holder = start(["train", "--variant", "tiny", "--steps", "100000", "--threads", "1", "--no-progress",
                    "--checkpoint-every", "5", "--out", out], tmp_path)
    wait_for(lambda: any((out / "checkpoints").glob("step-*")), holder, "a first checkpoint")
    status, lines = finish(start(["train", "--resume", "--out", out], tmp_path))
    refused_by(lines, out, holder)  # --resume cannot pass a live writer either
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    assert (out / CLAIM).exists()  # the kill left the note behind, not the lock
    status, lines = finish(start(["train", "--variant", "tiny", "--steps", "3", "--threads", "1", "--no-progress",
                                  "--out", out], tmp_path))
    assert status == 2 and "already exists and is not empty" in lines[-1]  # the old rules, unchanged
    status, lines = finish(start(["train", "--variant", "tiny", "--steps", "3", "--threads", "1", "--no-progress",
                                  "--overwrite", "--out", out], tmp_path))
    assert status == 0, lines
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000003"]


@pytest.mark.slow
def test_two_searches_race_for_one_folder(trained, tmp_path):
    out = tmp_path / "s"
    args = ["search", trained, "--evaluations", "400", "--calib-batches", "1", "--no-progress", "--threads", "1",
            "--out", out]
    first = start(args, tmp_path)
    wait_for(lambda: (out / "evaluations.csv").exists(), first, "the first search evaluates")
    status, lines = finish(start([*args, "--overwrite"], tmp_path))
    assert status == 2
    refused_by(lines, out, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    status, lines = finish(start([*args[:2], "--evaluations", "6", *args[4:], "--overwrite"], tmp_path))
    assert status == 0 and (out / "pareto.json").exists(), lines


@pytest.fixture
def holder(tmp_path):
    """Another process holding the claim of ``tmp_path / 'held'`` (or of a latency table file)."""
    procs = []

    def hold(folder, name=CLAIM):
        Path(folder).mkdir(parents=True, exist_ok=True)
        code = f"from supernet.io.claim import claim; claim({str(folder)!r}, name={name!r}); print('held', flush=True); " \
               "import time; time.sleep(600)"
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc
    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_export_finetune_and_latency_tables_refuse_a_held_folder(trained, tmp_path, holder, capsys):
    held = tmp_path / "held"
    proc = holder(held)
    status, err = run_main(["export", trained, "--arch", "smallest", "--out", held, "--no-onnx"], capsys)
    assert_refused(status, err, f"export folder {str(held)!r} is in use by pid {proc.pid} ")
    export = tmp_path / "e"
    assert run_main(["export", trained, "--arch", "smallest", "--out", export, "--no-onnx"], capsys)[0] == 0
    assert not (export / CLAIM).exists()
    status, err = run_main(["finetune", export, "--out", held, "--steps", "2"], capsys)
    assert_refused(status, err, f"run folder {str(held)!r} is in use by pid {proc.pid} ")
    lat = tmp_path / "lat"
    name = table_path(lat, MeasureConfig(target="cpu", threads=2), "mobilenet", "tiny",
                      config_to_dict(space_config("mobilenet", "tiny"))).name
    proc = holder(lat, f".{name}.claim")
    status, err = run_main(["latency", "build", "mobilenet", "--variant", "tiny", "--out", lat, "--archs", "5",
                            "--no-progress"], capsys)
    assert_refused(status, err, f"latency table folder {str(lat)!r} is in use by pid {proc.pid} ")


def test_one_process_claims_once_and_releases(tmp_path):
    first = claim(tmp_path)
    assert claim(tmp_path) == first  # the same claim, not a deadlock with itself
    release(tmp_path)
    assert not first.exists()
    release(tmp_path)  # nothing held: nothing to do
