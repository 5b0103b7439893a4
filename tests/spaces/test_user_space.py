"""A user's own space written from the docs alone (tests/spaces/user_relu_mlp.py: plain ReLU, a config
with ``classes`` and no ``num_classes``, a ``prepare_input`` that flattens 8x8 images, latency units),
loaded from a ``.py`` path in a temporary folder as ``SUPERNET_SPACES`` names it: it meets the contract,
passes the shared checks, gets one latency table per variant, exports its real preprocessing, and a
latency-budgeted search with ``--threads 1`` runs to the end (fresh-process latency sessions included)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.support.latency_sim import SimulatedTimer
from tests.support.space_checks import check_counts, check_extract_equals_forward, check_gradients, make

from supernet.core.contract import describe_preprocessing
from supernet.core.contract_check import contract_problems
from supernet.core.registry import _FILES, _SPACES, import_space_module

SOURCE = Path(__file__).with_name("user_relu_mlp.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def user_space(tmp_path):
    """The user's file copied into a folder of its own and imported from its path (as SUPERNET_SPACES does)."""
    path = tmp_path / "my_space" / "relu_mlp.py"
    path.parent.mkdir()
    shutil.copy(SOURCE, path)
    import_space_module(str(path))
    try:
        yield path
    finally:
        _SPACES.pop("relu_mlp", None)
        _FILES.pop(str(path.resolve()), None)


@pytest.mark.parametrize("variant", ["tiny", "digits"])
def test_a_relu_space_with_its_own_config_fields_meets_the_contract_and_the_shared_checks(user_space, variant):
    assert contract_problems("relu_mlp", variant) == []
    check_gradients(make("relu_mlp", variant))
    check_extract_equals_forward(make("relu_mlp", variant))
    check_counts(make("relu_mlp", variant))


def test_export_says_that_prepare_input_flattens(user_space):
    model = make("relu_mlp", "digits")
    arch = model.space.largest()
    line = describe_preprocessing(model, arch, (8, 8))
    assert line != "none" and "(8, 8) into (64,)" in line, line
    assert describe_preprocessing(model, arch, (64,)) == "none"  # flat data: nothing is done to it


def test_two_variants_of_one_space_get_two_latency_tables(user_space, tmp_path):
    from supernet.core.registry import get_space, space_config
    from supernet.hardware.latency_api import build_latency, find_table
    from supernet.hardware.rounds import MeasureConfig
    cfg = MeasureConfig(target="cpu", threads=1, warmup=1, repeats=3, min_seconds=0.0, rounds=1, unit_rounds=1)
    paths = [build_latency("relu_mlp", cfg, variant=v, archs=20, folder=tmp_path / "lat", progress=False,
                           timer=SimulatedTimer()) for v in ("tiny", "digits")]
    assert paths[0] != paths[1] and all(p.exists() for p in paths)
    assert "relu_mlp-tiny" in paths[0].name and "relu_mlp-digits" in paths[1].name
    for variant, path in zip(("tiny", "digits"), paths):
        space = get_space("relu_mlp").build_space(space_config("relu_mlp", variant))
        assert find_table("cpu", space, folder=tmp_path / "lat").space_config["widths"] == \
            list(space.config.widths)


@pytest.mark.slow
def test_a_latency_budgeted_search_runs_on_a_space_loaded_from_a_path(tmp_path):
    """train -> latency build -> search --max-latency-ms --threads 1 -> export, every command a subprocess
    with SUPERNET_SPACES naming the user's file (the front's latency sessions run in spawned processes)."""
    from sklearn.datasets import load_digits
    space_file = tmp_path / "mine" / "relu_mlp.py"
    space_file.parent.mkdir()
    shutil.copy(SOURCE, space_file)
    digits = load_digits()
    np.savez(tmp_path / "digits88.npz", x=(digits.images / 16).astype(np.float32), y=digits.target)
    env = {**os.environ, "SUPERNET_SPACES": str(space_file), "PYTHONPATH": str(REPO)}

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "supernet.cli", *map(str, args)], env=env, cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return done
    cli("train", "--space", "relu_mlp", "--data", "digits88.npz", "--steps", 20, "--batch-size", 64, "--out", "run",
        "--threads", 1, "--no-progress", "--no-tensorboard")
    cli("latency", "build", "run", "--target", "cpu", "--threads", 1, "--archs", 8, "--warmup", 2, "--repeats", 5,
        "--rounds", 2, "--unit-rounds", 2, "--out", "lat", "--no-progress")
    table_file, = (tmp_path / "lat").glob("cpu-relu_mlp-digits-*.json")
    table = json.loads(table_file.read_text())
    budget = 3 * max(r["median_ms"] for r in table["archs"])  # every arch of the space fits: the picks exist
    cli("search", "run", "--max-latency-ms", f"{budget:.4f}", "--target", "cpu", "--threads", 1, "--latency-table",
        table_file, "--evaluations", 6, "--initial", 2, "--generations", 3, "--population", 8, "--calib-batches", 1,
        "--out", "search", "--no-progress")
    pareto = json.loads((tmp_path / "search" / "pareto.json").read_text())
    pick = pareto["picks"]["max-accuracy-under-budget"]
    assert pick["latency"] <= budget and pick["latency_measured_ms"] > 0
    assert pareto["latency_check"]["fresh_processes"] and pareto["latency_check"]["budget_ms"] == pytest.approx(budget,
                                                                                                             rel=1e-3)
    cli("export", "--from-search", "search", "--pick", "max-accuracy-under-budget", "--out", "exported")
    arch_json = json.loads((tmp_path / "exported" / "arch.json").read_text())
    assert "(8, 8) into (64,)" in arch_json["preprocessing"], arch_json["preprocessing"]
