"""Issue 32, items 4-7: faults a new user met that were not one clear line (each failed before the fix)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supernet import SearchConfig, SupernetError
from supernet.api import pack_data, run_search
from supernet.core.arch import Dimension
from supernet.core.space import SearchSpace
from supernet.data.load import load_data
from tests.data.test_packed import jpeg_folder
from tests.support import assert_refused, run_main

REPO = Path(__file__).resolve().parents[2]


# 4. generation options are refused when the search measures no latency
@pytest.mark.parametrize("given", [["--latency-mode", "generate"], ["--prefill-tokens", "64"],
                                   ["--decode-tokens", "8", "--objectives", "accuracy,flops"]])
def test_generation_options_without_a_target_are_refused(trained, tmp_path, capsys, given):
    status, err = run_main(["search", trained, *given, "--out", tmp_path / "s"], capsys)
    assert_refused(status, err, f"{given[0]} set how latency is measured, but this search measures none without "
                                "--target")
    assert not (tmp_path / "s").exists()
    with pytest.raises(SupernetError, match=r"SearchConfig.latency_mode set how latency is measured"):
        SearchConfig(latency_mode="generate").resolved().check()


# 5. a cost that fails on every arch is named, with its first error
def broken_cost(arch):
    raise RuntimeError("no latency table for this device")


@pytest.mark.parametrize("budgets", [{"latency": 5.0}, {}])
def test_a_cost_failing_on_every_arch_says_so(tmp_path, budgets):
    space = SearchSpace([Dimension("width", (16, 24, 32, 48, 64), 3), Dimension("depth", (1, 2, 3))])
    config = SearchConfig(objectives=("accuracy", "latency"), budgets=budgets, evaluations=40)
    with pytest.raises(SupernetError, match=r"every evaluation of the costs failed \(10 archs tried.*the first error: "
                                            r"cost 'latency' raised RuntimeError: no latency table for this device"):
        run_search(space, lambda a: {"accuracy": 0.5}, config, costs={"latency": broken_cost}, out=tmp_path / "s",
                   tensorboard=False, progress=False)
    assert not (tmp_path / "s").exists()


# 6. a packed folder with a shard cut short is refused when opened; an unwritable --out is one line
def test_a_truncated_shard_is_refused_when_the_folder_opens(tmp_path):
    pack_data(jpeg_folder(tmp_path / "img"), tmp_path / "p", 32, workers=0, progress=False)
    shard = tmp_path / "p" / "train-00000.u8"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(SupernetError, match=r"packed shard .*train-00000.u8' holds \d+ bytes but its index needs \d+"):
        load_data(f"packed:{tmp_path / 'p'}")
    shard.unlink()
    with pytest.raises(SupernetError, match=r"train-00000.u8' is missing"):
        load_data(f"packed:{tmp_path / 'p'}")


def test_packing_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    folder = jpeg_folder(tmp_path / "img")
    status, err = run_main(["data", "pack", f"imagefolder:{folder}", "--size", "32", "--out", "/proc/x",
                            "--workers", "0", "--no-progress"], capsys)
    assert_refused(status, err, "--out '/proc/x' cannot be created")


# 7. a space file raising on import is one line; the built-in spaces still work
def test_a_space_file_that_raises_is_named_and_the_others_work(tmp_path):
    bad = tmp_path / "bad_space.py"
    bad.write_text("raise RuntimeError('boom while registering')\n")
    env = {**os.environ, "SUPERNET_SPACES": str(bad), "PYTHONPATH": str(REPO)}
    listing = subprocess.run([sys.executable, "-m", "supernet.cli", "spaces"], env=env, capture_output=True,
                             text=True, cwd=tmp_path)
    assert "mobilenet  tiny" in listing.stdout and listing.returncode == 2
    lines = listing.stderr.strip().splitlines()  # the last: one line (libraries may log their own before it)
    assert lines[-1].startswith("error: ") and str(bad) in lines[-1] and "Traceback" not in listing.stderr, lines
    assert f"search space module {str(bad)!r} raised RuntimeError: boom while registering" in lines[-1]
    run = subprocess.run([sys.executable, "-m", "supernet.cli", "latency", "measure", "mobilenet", "--variant", "tiny",
                          "--arch", "smallest", "--repeats", "3", "--warmup", "0", "--rounds", "1", "--threads", "1"],
                         env=env, capture_output=True, text=True, cwd=tmp_path)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 0 and '"median_ms"' in run.stdout, run.stderr
    assert "Traceback" not in run.stderr and any(line.startswith("warning: ") and str(bad) in line
                                                 for line in lines), lines
