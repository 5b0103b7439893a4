"""Many targets, one search (``supernet.nas.targets``): shared accuracy, one front / pick / folder per target."""
import csv
import json

import pytest

pytestmark = pytest.mark.slow  # each test runs whole searches

from supernet import Dimension, SearchConfig, SearchSpace, SupernetError
from supernet.api_targets import parse_budgets, parse_targets
from supernet.nas.targets import run_search_targets

SPACE = SearchSpace([Dimension("w", (1, 2, 3, 4, 5, 6, 7, 8), 3), Dimension("d", (1, 2, 3))], active_by={"w": "d"})
TARGETS = {  # three devices that rank archs differently: width-bound, depth-bound, mixed
    "phone": lambda a: 1.0 + 0.5 * sum(a["w"]),
    "server": lambda a: 2.0 + 3.0 * a["d"] + 0.05 * sum(a["w"]),
    "gpu": lambda a: 0.5 + 0.2 * max(a["w"]) + 0.5 * a["d"],
}
BUDGETS = {"phone": 6.0, "server": 6.0, "gpu": 2.5}


def make_evaluator(calls):
    def evaluate(arch):
        calls.append(arch)
        return {"accuracy": float(sum(arch["w"])) / 24 + 0.02 * arch["d"]}
    return evaluate


def config(**kw):
    base = dict(objectives=("accuracy", "latency"), evaluations=60, generations=5, population=16,
                predictor="ridge", per_round=6, uncertain=1)
    return SearchConfig(**{**base, **kw})


def test_accuracy_is_evaluated_once_per_arch_and_each_target_gets_its_folder(tmp_path):
    calls = []
    result = run_search_targets(SPACE, make_evaluator(calls), config(), TARGETS, BUDGETS, out=tmp_path / "s",
                                tensorboard=False, predictor_factory=_factory())
    assert len(calls) == len(set(calls)) == result.accuracy_evaluations == 60
    for t, fn in TARGETS.items():
        folder = tmp_path / "s" / "targets" / t
        pareto = json.loads((folder / "pareto.json").read_text())
        pick = pareto["picks"]["max-accuracy-under-budget"]
        assert pick["latency"] == pytest.approx(fn(SPACE.make(pick["arch"]))) and pick["latency"] <= BUDGETS[t]
        assert all(r["latency"] <= BUDGETS[t] for r in pareto["front"])
        with open(folder / "evaluations.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 60 and all(float(r["latency"]) == pytest.approx(fn(SPACE.make(json.loads(r["arch"]))))
                                       for r in rows)
        best = max((r for r in rows if float(r["latency"]) <= BUDGETS[t]), key=lambda r: float(r["accuracy"]))
        assert pick["accuracy"] == pytest.approx(float(best["accuracy"]))
    table = (tmp_path / "s" / "picks.md").read_text()
    assert all(f"| {t} |" in table for t in TARGETS)
    assert {r["target"] for r in result.table} == set(TARGETS)
    picks = {r["target"]: r for r in result.table}
    assert picks["phone"]["latency_ms@server"] == pytest.approx(TARGETS["server"](SPACE.make(picks["phone"]["arch"])))


def test_the_picks_differ_where_the_devices_do():
    result = run_search_targets(SPACE, make_evaluator([]), config(evaluations=80), TARGETS, BUDGETS,
                                tensorboard=False, predictor_factory=_factory())
    archs = {t: json.dumps(r["arch"], sort_keys=True) for t, r in ((r["target"], r) for r in result.table)}
    assert len(set(archs.values())) >= 2


def _factory():
    from predictors import make_predictor
    return make_predictor


def test_an_interrupted_multi_target_search_resumes_without_evaluating_twice(tmp_path):
    calls = []

    def flaky(arch):
        if len(calls) == 25:
            raise KeyboardInterrupt
        return make_evaluator(calls)(arch)
    with pytest.raises(KeyboardInterrupt):
        run_search_targets(SPACE, flaky, config(), TARGETS, BUDGETS, out=tmp_path / "s", tensorboard=False,
                           predictor_factory=_factory())
    more = []
    result = run_search_targets(SPACE, make_evaluator(more), config(), TARGETS, BUDGETS, out=tmp_path / "s",
                                resume=True, tensorboard=False, predictor_factory=_factory())
    assert len(calls) == 25 and len(more) == 35 and not set(calls) & set(more)
    assert result.accuracy_evaluations == 60
    with pytest.raises(SupernetError, match="ran for targets"):
        run_search_targets(SPACE, make_evaluator([]), config(), {"phone": TARGETS["phone"]}, BUDGETS,
                           out=tmp_path / "s", resume=True, predictor_factory=_factory())


def test_failures_are_recorded_once_and_shared():
    def sometimes(arch):
        if arch["d"] == 2 and arch["w"][0] == 3:
            raise RuntimeError("boom")
        return {"accuracy": float(sum(arch["w"])) / 24}
    result = run_search_targets(SPACE, sometimes, config(max_failures=60), TARGETS, BUDGETS,
                                predictor_factory=_factory())
    failed = [r for r in result.shared.evaluations if r["status"] != "ok"]
    assert failed and all(not r["is_pareto"] for t in result.targets.values() for r in t.evaluations
                          if r["status"] != "ok")


def test_budgets_and_targets_read_from_the_command_line():
    assert parse_targets(["cpu", "ort,cpu"]) == ["cpu", "ort"]
    assert parse_budgets("5", ["a", "b"]) == {"a": 5.0, "b": 5.0}
    assert parse_budgets("a=5,b=2", ["a", "b", "c"]) == {"a": 5.0, "b": 2.0, "c": None}
    with pytest.raises(SupernetError, match="not among --targets"):
        parse_budgets("z=5", ["a"])
    with pytest.raises(SupernetError, match="TARGET=MS"):
        parse_budgets("a=5,2", ["a", "b"])


def test_an_impossible_budget_on_one_target_is_refused_before_anything_runs(tmp_path):
    calls = []
    with pytest.raises(SupernetError, match="latency budget of target gpu"):
        run_search_targets(SPACE, make_evaluator(calls), config(), TARGETS, {**BUDGETS, "gpu": 0.1},
                           out=tmp_path / "s", predictor_factory=_factory())
    assert not calls and not (tmp_path / "s").exists()
