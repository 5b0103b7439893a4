"""``supernet search --compare``: named archs evaluated beside the picks with the search's evaluator;
``--data`` replacing a run's own data (the tiny trained run; OFA's picks: tests/spaces/test_ofa_data.py)."""
import json

import numpy as np

from supernet.api import evaluate, search
from supernet.cli.main import main
from supernet.nas.search_config import SearchConfig
from tests.support import run_main, save_npz


def config(budget):
    return SearchConfig(budgets={"flops": budget}, evaluations=5, initial=2, strategy="random", seed=0)


def test_anchors_are_scored_like_the_search_and_flagged_by_budget(trained, tmp_path, capsys):
    own = evaluate(trained, ["largest", "smallest"], splits=["val"], calib_batches=1)
    budget = (own[0]["flops"] + own[1]["flops"]) / 2  # the smallest fits, the largest does not
    result = search(trained, config(budget), tmp_path / "s", progress=False, tensorboard=False, calib_batches=1,
                    device="cpu", compare=["largest", "smallest"])
    rows = {a["name"]: a for a in result.anchors}
    assert list(rows) == ["largest", "smallest"]
    for name, mine in zip(rows, own):  # the same evaluator: the score `supernet eval` gives
        assert rows[name]["accuracy"] == mine["val_accuracy"] and rows[name]["flops"] == mine["flops"]
    assert rows["smallest"]["within_budget"] and not rows["largest"]["within_budget"]
    saved = json.loads((tmp_path / "s" / "compare.json").read_text())
    assert saved["budgets"] == {"flops": budget} and [a["name"] for a in saved["anchors"]] == list(rows)
    assert set(saved["picks"]) <= {"best-accuracy", "knee", "max-accuracy-under-budget"} and saved["picks"]


def test_compare_table_printed_and_bad_names_refused(trained, tmp_path, capsys):
    status = main([str(a) for a in ["search", trained, "--max-flops", "1G", "--evaluations", "5", "--initial", "2",
                                    "--strategy", "random", "--compare", "smallest", "--calib-batches", "1",
                                    "--device", "cpu", "--out", tmp_path / "s", "--no-progress", "--no-tensorboard"]])
    out = capsys.readouterr().out
    assert status == 0 and "compare  smallest" in out and "compare  pick max-accuracy-under-budget" in out
    for names, pattern in (("ofa:all", "names no arch ofa:ID"), ("smallest,tiniest", "tiniest")):
        status, err = run_main(["search", trained, "--compare", names, "--out", tmp_path / "bad"], capsys)
        assert status == 2 and len(err) == 1 and pattern in err[0], err
        assert not (tmp_path / "bad").exists()


def test_data_replaces_a_runs_own_and_must_fit_its_head(trained, tmp_path, capsys):
    """Four sets with the same inputs whose validation labels are all 0, all 1, all 2, all 3: if each
    score is on its own --data, every validation example is right in exactly one, so they sum to 1."""
    rng = np.random.default_rng(1)
    x, x_val = rng.standard_normal((80, 20)), rng.standard_normal((16, 20))
    scores = []
    for c in range(4):
        data = save_npz(tmp_path / f"all{c}.npz", x, np.arange(80) % 4, x_val=x_val.astype(np.float32),
                        y_val=np.full(16, c))
        scores.append(evaluate(trained, "largest", splits=["val"], calib_batches=1, data=data)[0]["val_accuracy"])
    assert abs(sum(scores) - 1.0) < 1e-6 and len(set(scores)) > 1, scores
    three = save_npz(tmp_path / "three.npz", rng.standard_normal((60, 20)), rng.integers(0, 3, 60))
    status, err = run_main(["eval", trained, "--arch", "largest", "--data", three], capsys)
    assert status == 2 and len(err) == 1 and "has 3 classes but the run's classifier has 4" in err[0], err
