"""Search: budgets, errors, determinism, resume, the cache, outputs, CLI, export --from-search, bench."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.support import assert_one_line_error, cli

from search_spaces.mobilenet.costs import count_macs, count_params
from supernet import Dimension, SearchSpace, run_search
from supernet.cli.main import main
from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config
from supernet.nas.search_config import SearchConfig
from supernet.nas.quantities import format_quantity, parse_quantity

REPO = Path(__file__).resolve().parents[2]
CFG = space_config("mobilenet", "tiny")
SPACE = get_space("mobilenet").build_space(CFG)
COSTS = {"flops": lambda a: count_macs(CFG, a), "params": lambda a: count_params(CFG, a)}
SMALLEST_FLOPS = count_macs(CFG, SPACE.smallest())  # 14400; the largest arch has 47344


class Synthetic:
    """accuracy = 1 - 0.5 exp(-flops / 30K) + a fixed wiggle per arch; counts calls, can stop after ``stop_after``."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def __call__(self, arch):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        self.calls.append(arch)
        x = SPACE.encode(arch)
        wiggle = 0.01 * np.sin(x @ np.arange(1, len(x) + 1))
        return {"accuracy": float(1 - 0.5 * np.exp(-COSTS["flops"](arch) / 30000) + wiggle)}


def fast(**kw):
    base = dict(evaluations=30, generations=8, population=16, per_round=8, uncertain=2, predictor="ridge", seed=1)
    return SearchConfig(**{**base, **kw})


def search(out=None, evaluator=None, **kw):
    return run_search(SPACE, evaluator or Synthetic(), fast(**kw), costs=COSTS, out=out, tensorboard=False)


def rows_of(run):
    with open(Path(run) / "evaluations.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- numbers -------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [("20M", 2e7), ("1.5G", 1.5e9), ("300k", 3e5), ("300K", 3e5), ("42", 42.0),
                                         ("2e6", 2e6), (" 7 M ", 7e6), (12, 12.0)])
def test_quantities_take_k_m_g_suffixes(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "M", "20X", "20MB", "-5M", "0", "nan", "inf", "1e400", "2 0M"])
def test_bad_quantities_raise_one_clear_error(text):
    with pytest.raises(SupernetError, match="--max-flops"):
        parse_quantity(text, "--max-flops")


def test_format_quantity():
    assert [format_quantity(v) for v in (2e7, 1520000, 14400, 0.93)] == ["20M", "1.52M", "14.4K", "0.93"]


# -- budgets ---------------------------------------------------------------------------
def test_every_returned_arch_meets_every_budget(tmp_path):
    budgets = {"flops": "30K", "params": 6000}
    result = search(tmp_path / "run", budgets=budgets, objectives=("accuracy", "flops", "params"))
    assert result.front and all(r["flops"] <= 30000 and r["params"] <= 6000 for r in result.front)
    assert all(count_macs(CFG, SPACE.make(r["arch"])) == r["flops"] for r in result.front)
    searched = [r for r in result.evaluations if not r["baseline"]]
    assert searched and all(r["feasible"] for r in searched)  # proposals respect exact cost budgets
    assert not any("largest" in r["baseline"] for r in result.evaluations)  # it breaks the budget: not evaluated
    assert all(r["feasible"] for r in result.evaluations if r["baseline"])
    assert {r["index"] for r in result.front} == {r["index"] for r in result.evaluations if r["is_pareto"]}


def test_budget_below_the_smallest_arch_fails_at_once(tmp_path):
    evaluator = Synthetic()
    with pytest.raises(SupernetError, match=r"the smallest flops is 14.4K; raise SearchConfig.budgets\['flops'\]"):
        run_search(SPACE, evaluator, fast(budgets={"flops": "10K"}), costs=COSTS, out=tmp_path / "run")
    assert evaluator.calls == [] and not (tmp_path / "run").exists()


def test_budgets_that_cannot_hold_together_fail_at_once():
    space = SearchSpace([Dimension("width", (10, 20, 30, 40, 50, 60, 70, 80, 90)), Dimension("depth", (1, 2))])
    costs = {"flops": lambda a: a["width"], "params": lambda a: 100 - a["width"]}
    config = SearchConfig(budgets={"flops": 40, "params": 40}, evaluations=10)
    with pytest.raises(SupernetError, match="no arch meets all budgets together"):
        run_search(space, lambda a: {"accuracy": 0.5}, config, costs=costs)


def test_latency_from_your_own_evaluator_is_predicted_and_searched():
    def evaluator(arch):
        return {**Synthetic()(arch), "latency": 1e-5 * COSTS["flops"](arch) + 0.3}
    result = search(evaluator=evaluator, objectives=("accuracy", "latency"), budgets={"latency": 0.6})
    assert result.front and all(row["latency"] <= 0.6 for row in result.front)


@pytest.mark.parametrize("change, message", [(dict(objectives=("accuracy",)), "at least 2"),
                                             (dict(objectives=("accuracy", "speed")), "unknown metric 'speed'"),
                                             (dict(budgets={"accuracy": 0.9}), "accuracy cannot take a budget"),
                                             (dict(uncertain=9), "cannot exceed"), (dict(evaluations=3), ">= 5"),
                                             (dict(strategy="bayes"), "strategy"), (dict(predictor="svm"), "svm")])
def test_config_mistakes_name_the_fix(change, message):
    with pytest.raises(SupernetError, match=message):
        search(**change)


# -- determinism, resume, cache ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["predictor", "nsga2", "random"])
def test_same_seed_same_search(tmp_path, strategy):
    search(tmp_path / "a", strategy=strategy)
    search(tmp_path / "b", strategy=strategy)
    search(tmp_path / "c", strategy=strategy, seed=2)
    a, b, c = ((tmp_path / n / "evaluations.csv").read_text() for n in "abc")
    assert a == b and a != c


@pytest.mark.slow
@pytest.mark.parametrize("strategy, stop_after", [("predictor", 9), ("predictor", 13), ("nsga2", 21)])
def test_resume_after_an_interruption_equals_an_uninterrupted_search(tmp_path, strategy, stop_after):
    search(tmp_path / "full", strategy=strategy)
    with pytest.raises(KeyboardInterrupt):  # round 0 holds 9 evaluations: 9 stops between rounds, 13 inside one
        search(tmp_path / "part", Synthetic(stop_after), strategy=strategy)
    assert len(rows_of(tmp_path / "part")) == stop_after
    rest = Synthetic()
    result = run_search(SPACE, rest, None, costs=COSTS, out=tmp_path / "part", resume=True, tensorboard=False)
    assert len(rest.calls) == 30 - stop_after  # nothing evaluated twice
    assert (tmp_path / "part" / "evaluations.csv").read_text() == (tmp_path / "full" / "evaluations.csv").read_text()
    log = lambda run: [(r["round"], r["hypervolume"]) for r in map(json.loads, open(run / "log.jsonl"))]
    assert log(tmp_path / "part") == log(tmp_path / "full")
    assert len(result.evaluations) == 30


def test_resume_refuses_another_config(tmp_path):
    search(tmp_path / "run")
    with pytest.raises(SupernetError, match=r"differs in \['seed'\]"):
        run_search(SPACE, Synthetic(), fast(seed=5), costs=COSTS, out=tmp_path / "run", resume=True)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["predictor", "nsga2"])
def test_an_arch_is_never_evaluated_twice(tmp_path, strategy):
    evaluator = Synthetic()
    result = search(tmp_path / "run", evaluator, strategy=strategy, evaluations=40)
    assert len(evaluator.calls) == len(set(evaluator.calls)) == len(result.evaluations) == 40
    again = Synthetic()
    run_search(SPACE, again, None, costs=COSTS, out=tmp_path / "run", resume=True, tensorboard=False)
    assert again.calls == []  # a finished search resumes from its cache alone


def test_plain_nsga2_stops_where_a_longer_run_would_be(tmp_path):
    """The bench reads plain NSGA-II at every prefix of one long run; that needs this property."""
    short, long = search(strategy="nsga2", evaluations=20), search(strategy="nsga2", evaluations=40)
    assert [r["arch"] for r in short.evaluations] == [r["arch"] for r in long.evaluations[:20]]


# -- outputs ---------------------------------------------------------------------------
def test_run_folder_schema(tmp_path):
    run = tmp_path / "run"
    result = run_search(SPACE, Synthetic(), fast(budgets={"flops": "35K"}), costs=COSTS, out=run)
    assert {"config.json", "evaluations.csv", "pareto.json", "pareto.png", "log.jsonl", "state.json",
            "tensorboard"} <= {p.name for p in run.iterdir()}
    rows = rows_of(run)
    assert list(rows[0]) == ["index", "round", "baseline", "status", "feasible", "is_pareto", "accuracy", "flops",
                             "params", "error", "arch"]
    assert {r["status"] for r in rows} == {"ok"} and {r["error"] for r in rows} == {""}
    assert [int(r["index"]) for r in rows] == list(range(30))
    assert {r["baseline"] for r in rows} == {"smallest+median", ""}  # tiny: median == smallest; largest > 35K
    for r in rows:
        arch = SPACE.make(json.loads(r["arch"]))
        assert int(r["flops"]) == count_macs(CFG, arch) and 0 < float(r["accuracy"]) < 1
        assert r["feasible"] == str(int(r["flops"]) <= 35000) and (r["is_pareto"] == "False" or r["feasible"] == "True")
    pareto = json.loads((run / "pareto.json").read_text())
    assert set(pareto) == {"objectives", "budgets", "evaluations", "failures", "reference", "hypervolume", "front",
                           "baselines", "picks"}
    assert pareto["budgets"] == {"flops": 35000.0} and pareto["reference"]["ref_point"][1] == pytest.approx(
        14400 + 1.1 * (35000 - 14400))
    assert [r["index"] for r in pareto["front"]] == [r["index"] for r in result.front]
    assert set(pareto["picks"]) == {"best-accuracy", "knee", "max-accuracy-under-budget"}
    assert pareto["picks"]["best-accuracy"]["accuracy"] == max(float(r["accuracy"]) for r in rows)
    assert pareto["picks"]["max-accuracy-under-budget"]["accuracy"] == max(r["accuracy"] for r in result.front)
    assert (run / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((run / "config.json").read_text())
    assert config["search"]["evaluations"] == 30 and config["search"]["initial"] == 7 and config["costs"] == [
        "flops", "params"]
    log = [json.loads(line) for line in open(run / "log.jsonl")]
    assert [r["round"] for r in log] == list(range(len(log))) and log[-1]["evaluations"] == 30
    assert {"hypervolume", "front_size", "tau/accuracy", "mape/accuracy"} <= set(log[1])
    assert log[1]["tau/accuracy"] is not None and log[-1]["hypervolume"] >= log[0]["hypervolume"] > 0


@pytest.mark.slow
def test_docstring_example_searches_a_user_space(tmp_path, monkeypatch):
    import supernet.nas.loop as module
    code = module.__doc__.split("::\n\n")[1].split("\n\nA metric")[0]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "example", "exec"), namespace)
    result = namespace["result"]
    assert len(result.evaluations) == 12 and all(r["flops"] <= 10000 for r in result.front)
    assert (tmp_path / "runs" / "my-search" / "evaluations.csv").exists()


# -- CLI and export --from-search --------------------------------------------------------
@pytest.mark.slow
def test_search_cli_and_export_each_pick(trained, tmp_path, capsys):  # noqa: F811
    from supernet.io.checkpoint import load_checkpoint
    model, _ = load_checkpoint(trained)
    low, high = model.flops(model.space.smallest()), model.flops(model.space.largest())
    budget = f"{(low + high) / 2 / 1000:.1f}K"
    run = tmp_path / "search"
    result = cli("search", trained, "--objectives", "accuracy,flops", "--max-flops", budget, "--evaluations", 12,
                 "--initial", 4, "--per-round", 4, "--uncertain", 1, "--generations", 4, "--population", 8,
                 "--predictor", "ridge", "--out", run, "--no-progress", "--no-tensorboard")
    assert result.returncode == 0, result.stderr
    assert "hypervolume" in result.stdout and f"searched: {run}" in result.stdout
    pareto = json.loads((run / "pareto.json").read_text())
    assert len(rows_of(run)) == 12 and all(r["flops"] <= parse_quantity(budget) for r in pareto["front"])
    for pick in ("best-accuracy", "knee", "max-accuracy-under-budget"):
        assert main(["export", "--from-search", str(run), "--pick", pick, "--out", str(tmp_path / pick),
                     "--no-onnx"]) == 0
        exported = json.loads((tmp_path / pick / "arch.json").read_text())
        assert exported["arch"] == pareto["picks"][pick]["arch"]
    assert main(["search", "--resume", "--out", str(run), "--no-progress"]) == 0  # finished: nothing to do
    assert main(["export", "--from-search", str(run), "--pick", "max-accuracy-under-budget", "--max-flops",
                 str(low - 1), "--out", str(tmp_path / "none"), "--no-onnx"]) == 2
    assert "no evaluated arch meets the budgets" in capsys.readouterr().err
    assert_one_line_error(cli("search", trained, "--max-flops", "1K", "--out", tmp_path / "x"),
                          f"the smallest flops is {format_quantity(low)}; raise --max-flops")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [(["--max-flops", "20X"], "--max-flops: cannot read '20X'"),
                                           (["--max-params=-1M"], "--max-params must be a positive number"),
                                           (["--evaluations", "1.5K2"], "--evaluations: cannot read"),
                                           (["--max-latency-ms", "5"], "needs --target"),
                                           (["--objectives", "accuracy,latency"], "needs --target")])
def test_search_cli_errors_are_one_line(tmp_path, capsys, args, message):
    assert main(["search", str(tmp_path / "missing"), *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "r").exists()


def test_search_help_has_examples():
    result = cli("search", "--help")
    assert result.returncode == 0 and "examples:" in result.stdout and "supernet search" in result.stdout


def test_export_from_search_needs_a_search_run(tmp_path, capsys):
    assert main(["export", "--from-search", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "search config" in capsys.readouterr().err


# -- the benchmark script ----------------------------------------------------------------
@pytest.mark.slow
def test_bench_search_runs_small(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_search", "--synthetic", "--pool-size",
                             "80", "--seeds", "1", "--budgets", "12", "--reference-evals", "24", "--predictor",
                             "ridge", "--generations", "4", "--population", "8", "--pool-file",
                             str(tmp_path / "pool.csv"), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"predictor", "nsga2", "random"} and data["pool"]["size"] == 80
    assert 0 < data["results"]["predictor"]["12"]["rel_hv_mean"] <= 1 + 1e-9
    assert set(data["targets"]) == {"hv98_within_100", "third_of_nsga2"}
    assert len((tmp_path / "pool.csv").read_text().splitlines()) == 81


@pytest.mark.slow
def test_bench_pool_is_the_same_with_worker_processes(tmp_path):
    from benchmarks.bench_search import SyntheticEvaluator, build_pool, pool_archs
    evaluate = SyntheticEvaluator("tiny")
    archs = pool_archs(evaluate.space, 30, seed=1)
    serial = build_pool(evaluate.space, evaluate, archs, tmp_path / "a.csv", {"seed": 1})
    parallel = build_pool(evaluate.space, evaluate, archs, tmp_path / "b.csv", {"seed": 1}, workers=2)
    assert list(parallel) == archs and parallel == serial
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_tabular_space_only_yields_table_archs():
    from benchmarks.bench_search import TabularSpace, pool_archs
    table = pool_archs(SPACE, 30, seed=0)
    tab = TabularSpace(SPACE, table)
    rng = np.random.default_rng(0)
    lo, hi = SPACE.bounds()
    assert all(tab.decode(rng.integers(lo, hi + 1)) in table for _ in range(50))
    assert tab.smallest() == SPACE.smallest() and tab.largest() == SPACE.largest() and tab.sample(rng) in table


@pytest.mark.slow
def test_latency_budget_uses_the_table_and_measures_the_front(trained, tmp_path, monkeypatch):  # noqa: F811
    from supernet.api import search as search_checkpoint
    from supernet.hardware.rounds import MeasureConfig
    from supernet.hardware.latency_api import build_latency, find_table
    fast_cpu = MeasureConfig(target="cpu", threads=1, warmup=1, repeats=3, min_seconds=0.0)
    from supernet.io.checkpoint import load_checkpoint
    space = load_checkpoint(trained)[0].space
    monkeypatch.chdir(tmp_path)  # the default table folder is ./latency
    # the drift check re-times the reference arch: on a loaded machine it can scale every prediction above this
    # test's budget; here the table holds (drift itself is tested on a simulated machine, tests/support/latency_sim.py)
    from supernet.hardware import drift
    monkeypatch.setattr(drift, "check_drift", lambda table, *args: drift.compare(table.reference, table.reference))
    with pytest.raises(SupernetError, match="no latency table for target 'cpu'.*supernet latency build"):
        search_checkpoint(trained, fast(budgets={"latency": 5}, target="cpu"), tmp_path / "none", progress=False)
    path = build_latency(str(trained), fast_cpu, archs=8, folder=tmp_path / "lat", progress=False)
    table = find_table("cpu", space, None, tmp_path / "lat")
    from predictors.latency import latency_cost
    cost = latency_cost(table, space)
    low, high = cost(space.smallest()), cost(space.largest())
    budget = (low + high) / 2
    result = search_checkpoint(trained, fast(objectives=("accuracy", "latency"), budgets={"latency": budget},
                                             target="cpu", evaluations=12), tmp_path / "run", latency_table=path,
                               progress=False, tensorboard=False)
    scale = json.loads((tmp_path / "run" / "config.json").read_text())["source"]["latency_drift"]["scale"]
    assert result.front and all(scale * cost(space.make(r["arch"])) <= budget * (1 + 1e-9) for r in result.front)
    measured = json.loads((tmp_path / "run" / "front_latency.json").read_text())
    assert {r["index"] for r in result.front} <= {r["index"] for r in measured["front"]}
    assert all(r["latency_measured_ms"] > 0 and len(r["latency_sessions_ms"]) == 2 for r in measured["front"])


@pytest.mark.slow
def test_bench_label_noise_compares_val_and_test_of_the_same_archs(trained, tmp_path):  # noqa: F811
    out = tmp_path / "noise.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_label_noise", "--checkpoint",
                             str(trained), "--archs", "6", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["archs"] == 6 and data["val_examples"] > 0 and data["test_examples"] > 0
    tau = data["kendall_tau_val_test"]
    assert "Kendall tau(val, test)" in result.stdout and (tau is None or -1 <= tau <= 1)


def test_label_noise_ceiling_matches_a_perfect_predictors_tau():
    from benchmarks.bench_label_noise import ceiling

    from predictors import kendall_tau
    rng = np.random.default_rng(0)
    truth = rng.normal(size=4000)
    val, test = truth + 0.3 * rng.normal(size=4000), truth + 0.5 * rng.normal(size=4000)
    est = ceiling(val, test)
    assert est["true_sd"] == pytest.approx(1.0, abs=0.05) and est["noise_sd_val"] == pytest.approx(0.3, abs=0.05)
    assert est["perfect_predictor_tau"] == pytest.approx(kendall_tau(truth, val), abs=0.02)
    assert ceiling(val, -test)["perfect_predictor_tau"] is None


# -- failures are data ---------------------------------------------------------------
class Failing(Synthetic):
    """Raises, sleeps, returns NaN or drops the accuracy for a fixed share of archs (by the arch's hash)."""

    def __init__(self, mode, every=4):
        super().__init__()
        self.mode, self.every = mode, every

    def bad(self, arch):
        return int(SPACE.encode(arch).sum()) % self.every == 1

    def __call__(self, arch):
        if not self.bad(arch):
            return super().__call__(arch)
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        self.calls.append(arch)
        if self.mode == "raise":
            raise ValueError("simulated crash")
        if self.mode == "sleep":
            import time
            time.sleep(5)
        return {"accuracy": float("nan")} if self.mode == "nan" else {"flops_only": 1}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["predictor", "nsga2", "random"])
@pytest.mark.parametrize("mode, status, text", [("raise", "error", "ValueError: simulated crash"),
                                                ("nan", "invalid", "no finite 'accuracy'"),
                                                ("missing", "invalid", "no finite 'accuracy'")])
def test_failing_evaluations_are_recorded_and_never_retried(tmp_path, strategy, mode, status, text):
    evaluator = Failing(mode)
    result = search(tmp_path / "run", evaluator, strategy=strategy, max_failures=30)
    rows = rows_of(tmp_path / "run")
    failed = [r for r in rows if r["status"] != "ok"]
    assert len(rows) == 30 and failed and result.failures == len(failed)
    assert all(r["status"] == status and text in r["error"] and r["is_pareto"] == "False" for r in failed)
    assert len(evaluator.calls) == len(set(evaluator.calls)) == 30  # no arch evaluated twice, failures included
    assert result.front and all(SPACE.make(r["arch"]) not in {SPACE.make(json.loads(f["arch"])) for f in failed}
                                for r in result.front)


@pytest.mark.slow
def test_resume_does_not_retry_failures(tmp_path):
    stopping = Failing("raise")
    stopping.stop_after = 15
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "run", stopping, max_failures=30)
    failed = {SPACE.make(json.loads(r["arch"])) for r in rows_of(tmp_path / "run") if r["status"] == "error"}
    assert failed
    rest = Failing("raise")
    run_search(SPACE, rest, None, costs=COSTS, out=tmp_path / "run", resume=True, tensorboard=False)
    assert not failed & set(rest.calls) and len(rows_of(tmp_path / "run")) == 30


@pytest.mark.slow
def test_a_slow_evaluation_times_out_and_the_search_goes_on(tmp_path):
    evaluator = Failing("sleep", every=3)
    result = search(tmp_path / "run", evaluator, evaluations=12, eval_timeout=0.2, max_failures=12)
    timed_out = [r for r in result.evaluations if r["status"] == "timeout"]
    assert timed_out and all("eval_timeout=0.2" in r["error"] for r in timed_out) and len(result.evaluations) == 12


def test_too_many_failures_stop_with_a_clear_error_and_keep_everything(tmp_path):
    with pytest.raises(SupernetError, match=r"more than max_failures=2; the last: .* error: ValueError") as info:
        search(tmp_path / "run", Failing("raise", every=2), max_failures=2)
    rows = rows_of(tmp_path / "run")
    assert sum(r["status"] == "error" for r in rows) == 3 and len(info.value.result.evaluations) == len(rows)
    with pytest.raises(SupernetError) as none:  # out=None: the result rides on the error
        search(None, Failing("raise", every=2), max_failures=2)
    assert none.value.result is not None and none.value.result.failures == 3


@pytest.mark.parametrize("bad", [float("nan"), -1.0, "raise"])
def test_a_bad_cost_is_a_recorded_failure_never_a_front_point(bad):
    def flops(arch):
        if SPACE.encode(arch).sum() % 3 == 0:
            if bad == "raise":
                raise RuntimeError("no cost")
            return bad
        return COSTS["flops"](arch)
    for strategy in ("predictor", "nsga2"):
        result = run_search(SPACE, Synthetic(), fast(strategy=strategy, max_failures=30), costs={"flops": flops},
                            tensorboard=False)
        failed = [r for r in result.evaluations if r["status"] != "ok"]
        assert failed and all(r["status"] == "invalid" and "cost 'flops'" in r["error"] for r in failed)
        assert result.front and all(np.isfinite(r["flops"]) and r["flops"] >= 0 for r in result.front)
        assert result.hypervolume > 0


def test_an_object_with_evaluate_many_is_the_evaluator_and_may_fail_a_batch():
    class Batched:
        def __init__(self):
            self.batches = []

        def evaluate_many(self, archs):
            self.batches.append(len(archs))
            if len(self.batches) == 2:
                raise OSError("cluster down")
            return [Synthetic()(a) for a in archs]
    evaluator = Batched()
    result = search(evaluator=evaluator, strategy="nsga2", max_failures=30)
    assert len(result.evaluations) == 30 and max(evaluator.batches) > 1  # whole generations per call
    failed = [r for r in result.evaluations if r["status"] != "ok"]
    assert len(failed) == evaluator.batches[1] and "evaluate_many raised OSError: cluster down" in failed[0]["error"]


# -- budgets that tell the truth -------------------------------------------------------
OPS = ("conv3x3", "none", "skip", "pool", "conv1x1")
COST = {"none": 0.0, "skip": 0.1, "pool": 1.0, "conv1x1": 2.0, "conv3x3": 5.0}
CELL = SearchSpace([Dimension("op", OPS, 8, kind="categorical")])  # 390,625 archs: too many to enumerate


def cell_latency(arch):
    return 0.5 + sum(COST[o] for o in arch["op"])


@pytest.mark.slow
def test_a_budget_met_by_a_handful_of_archs_is_accepted():
    budget = 0.5 + 0.1  # met by the all-none arch and the 8 with one skip: 9 of 390,625
    result = run_search(CELL, lambda a: {"accuracy": 1 - cell_latency(a) / 50}, SearchConfig(
        objectives=("accuracy", "latency"), budgets={"latency": budget}, evaluations=12, predictor="ridge",
        generations=4, population=12), costs={"latency": cell_latency}, tensorboard=False)
    assert result.front and all(r["latency"] <= budget for r in result.front)


@pytest.mark.slow
def test_an_unmeetable_budget_names_the_smallest_cost_found_and_the_callers_option():
    config = SearchConfig(objectives=("accuracy", "latency"), budgets={"latency": 0.4}, evaluations=12)
    with pytest.raises(SupernetError, match=r"smallest latency found is 0.5 \(not proven minimal\); raise "
                                            r"SearchConfig.budgets\['latency'\]"):
        run_search(CELL, lambda a: {"accuracy": 0.5}, config, costs={"latency": cell_latency})
    with pytest.raises(SupernetError, match="raise --max-latency-ms to"):
        run_search(CELL, lambda a: {"accuracy": 0.5}, config, costs={"latency": cell_latency},
                   option_names={"budgets.latency": "--max-latency-ms"})


@pytest.mark.slow
def test_a_budget_on_an_evaluated_metric_no_arch_meets_warns_with_the_closest(tmp_path):
    def evaluator(arch):
        return {**Synthetic()(arch), "latency": 1e-5 * COSTS["flops"](arch) + 0.3}
    with pytest.warns(UserWarning, match=r"no evaluated arch meets the budgets; the closest is evaluation \d+ .*"
                                         r"latency=0.444"):
        result = search(evaluator=evaluator, objectives=("accuracy", "latency"), budgets={"latency": 0.2})
    assert result.front == [] and result.warnings and "latency=0.444" in result.warnings[0]


# -- objectives, reference point, hypervolume ----------------------------------------------
@pytest.mark.slow
def test_your_own_objective_takes_a_direction(tmp_path):
    def evaluator(arch):
        return {**Synthetic()(arch), "energy": COSTS["params"](arch) / 1000}
    result = search(tmp_path / "run", evaluator, objectives=("accuracy", "energy:min"), budgets={"energy": 6})
    assert result.front and all(r["energy"] <= 6 for r in result.front)
    energies = sorted(r["energy"] for r in result.front)
    accuracies = [r["accuracy"] for r in sorted(result.front, key=lambda r: r["energy"])]
    assert accuracies == sorted(accuracies) and energies  # a min/max front: more energy buys accuracy
    with pytest.raises(SupernetError, match=r"unknown metric 'energy'.*energy:min"):
        search(objectives=("accuracy", "energy"))
    with pytest.raises(SupernetError, match="accuracy is maximised; drop ':min'"):
        search(objectives=("accuracy:min", "flops"))


@pytest.mark.slow
def test_reference_point_is_recorded_and_hypervolume_is_public(tmp_path):
    from supernet.nas.pareto import hypervolume
    point = {"accuracy": 0.5, "flops": 60000}
    result = search(tmp_path / "run", reference_point=point)
    pareto = json.loads((tmp_path / "run" / "pareto.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["search"]["reference_point"] == point and pareto["reference"]["ref_point"] == [-0.5, 60000]
    assert result.hypervolume == pytest.approx(hypervolume(result.front, point))
    square = [{"accuracy": 0.9, "flops": 20000}, {"accuracy": 0.7, "flops": 10000}]
    assert hypervolume(square, point) == pytest.approx(0.4 * 40000 + 0.2 * 10000)
    with pytest.raises(SupernetError, match="one value for each objective"):
        search(reference_point={"accuracy": 0.5})


# -- categorical choices, canonical archs ------------------------------------------------
class SymmetricCell(SearchSpace):
    """Positions 0 and 1 are the two inputs of an add: swapping them is the same network."""

    name = "symmetric-cell"

    def __init__(self):
        super().__init__([Dimension("op", ("none", "skip", "conv", "pool"), 4, kind="categorical"),
                          Dimension("width", (0.5, 1.0, 1.5))])

    def canonical(self, arch):
        ops = arch["op"]
        return self.make(arch.replace(op=tuple(sorted(ops[:2])) + ops[2:]))


def test_canonical_hook_merges_equivalent_archs_and_string_choices_search():
    space, calls = SymmetricCell(), []

    def evaluator(arch):
        calls.append(arch)
        score = {"none": 0.0, "skip": 0.2, "conv": 0.5, "pool": 0.3}
        return {"accuracy": sum(score[o] for o in arch["op"]) * arch["width"], "params": 10 * arch["width"] + 1}
    result = run_search(space, evaluator, SearchConfig(objectives=("accuracy", "params"), evaluations=40,
                                                        predictor="ridge", generations=5, population=12),
                        tensorboard=False)
    assert len(calls) == len(set(calls)) == 40 and all(space.canonical(a) == a for a in calls)
    assert all(isinstance(o, str) for r in result.front for o in r["arch"]["op"])
    assert {r["arch"]["width"] for r in result.evaluations} <= {0.5, 1.0, 1.5}


@pytest.mark.slow
def test_readme_bring_your_own_space_example_runs(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    section = text.split("### Bring your own space")[1]
    code = section.split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README", "exec"), namespace)
    result = namespace["result"]
    assert len(result.evaluations) == 40 and result.failures > 0 and result.front
    assert all(r["energy"] <= 4 for r in result.front)
    rows = rows_of(tmp_path / "runs" / "cells")
    assert {r["status"] for r in rows} == {"ok", "error"}
    assert all("disconnected cell" in r["error"] for r in rows if r["status"] == "error")


@pytest.mark.slow
def test_bench_categorical_runs_small(tmp_path):
    out = tmp_path / "cat.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_categorical", "--tasks", "1", "--seeds",
                             "1", "--budgets", "12", "--reference-evals", "20", "--sizes", "20", "--splits", "1",
                             "--predictors", "ridge", "auto", "--predictor", "ridge", "--generations", "3",
                             "--population", "8", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data["targets"]) == {"auto_within_0.02_of_best", "guided_le_100_reaches_nsga2_300", "guided_budget"}
    assert 0 < data["search"]["predictor"]["12"] <= 1 and set(data["predictors"]["20"]["tau"]) == {"ridge", "auto"}
    assert len(data["tasks"]["0"]["search"]["nsga2"]["0"]) == 20  # one hypervolume per evaluation prefix


@pytest.mark.slow
def test_search_reports_its_reference_point_marks_the_pick_and_names_the_split(tmp_path):
    import os

    from supernet import Dimension, SearchSpace
    space = SearchSpace([Dimension("width", (16, 24, 32, 48, 64)), Dimension("depth", (1, 2, 3, 4))])
    costs = {"flops": lambda a: a["width"] ** 2 * a["depth"]}
    calls = []
    import supernet.nas.outputs as outputs
    real_plot = outputs.plot_front
    outputs.plot_front = lambda *a, **k: calls.append((a, k)) or real_plot(*a, **k)
    try:
        result = run_search(space, lambda a: {"accuracy": 1 - 1 / (a["width"] * a["depth"])},
                            SearchConfig(budgets={"flops": "20K"}, evaluations=12), costs=costs, out=tmp_path / "s",
                            source={"split": "val"}, tensorboard=False)
    finally:
        outputs.plot_front = real_plot
    point = json.loads((tmp_path / "s" / "pareto.json").read_text())["reference"]["point"]
    assert set(point) == {"accuracy", "flops"} and point == result.reference["point"]
    picks, split = calls[-1][0][3], calls[-1][0][4]
    assert picks["max-accuracy-under-budget"]["index"] == result.picks["max-accuracy-under-budget"]["index"]
    assert split == "val" and outputs._axis_label(result_plan(space, costs), "accuracy", "val").endswith(
        "validation split")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "s" / "pareto.png").st_mode & 0o777 == 0o666 & ~mask


def result_plan(space, costs):
    from supernet.nas.plan import make_plan
    return make_plan(space, ("accuracy", "flops"), {"flops": 20000.0}, costs)
