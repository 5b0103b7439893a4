"""Latency that holds: spread over rounds and processes, drift from the reference arch, budget flags.

The machine is simulated (tests/support/latency_sim.py): a timer that drifts, spikes and can be made 20 %
slower, so every figure here is exact and fast, on any CPU.
"""
import json

import numpy as np
import pytest
from tests.support.latency_sim import SimulatedTimer

from predictors.latency import latency_cost
from supernet.core.registry import get_space, space_config
from supernet.hardware.drift import MIN_DRIFT, check_drift, compare
from supernet.hardware.front import budget_notes, pooled, sessions_of
from supernet.hardware.rounds import MeasureConfig
from supernet.hardware.latency_table import REFERENCE_ROUNDS, LatencyTable, build_table
from supernet.nas.search_config import SearchConfig, SearchResult

CFG = MeasureConfig(target="cpu", threads=1, warmup=0, repeats=5, min_seconds=0.0, rounds=5, unit_rounds=3)


@pytest.fixture
def space():
    return get_space("mobilenet").build_space(space_config("mobilenet", "tiny"))


def built(space, tmp_path, timer, n_archs=16):
    table = LatencyTable("mobilenet", space.config.to_dict(), CFG)
    return build_table(table, space, tmp_path / "t.json", n_archs=n_archs, progress=False, timer=timer)


@pytest.mark.slow
def test_table_stores_its_reference_arch_and_kernel_counts(space, tmp_path):
    table = built(space, tmp_path, SimulatedTimer(noise=0.02))
    ref = table.reference
    assert space.make(ref["arch"]) == space.median() and ref["rounds"] == REFERENCE_ROUNDS
    assert len(ref["round_ms"]) == REFERENCE_ROUNDS and ref["spread_ms"][0] <= ref["latency_ms"] <= ref["spread_ms"][1]
    loaded = LatencyTable.load(tmp_path / "t.json")
    assert loaded.reference == ref and loaded.kernels == table.kernels
    assert set(table.kernels) == set(table.units) and min(table.kernels.values()) > 0


@pytest.mark.slow
def test_a_machine_20_percent_slower_is_detected_and_corrected(space, tmp_path):
    timer = SimulatedTimer(seed=1, noise=0.02, spike_p=0.05)
    table = built(space, tmp_path, timer)
    timer.speed = 1.2  # the same machine, 20 % slower than when the table was built
    drift = check_drift(table, space, timer=timer)
    assert drift.status == "corrected" and drift.scale == pytest.approx(1.2, rel=0.03)
    assert "% slower" in drift.message and f"scaled by {drift.scale:.3f}" in drift.message
    plain = latency_cost(table, space)
    corrected = latency_cost(table, space, drift.scale)
    rng = np.random.default_rng(5)
    archs = [space.sample(rng) for _ in range(20)]
    now = np.array([1.2 * timer.true_ms(space.build_static(a), space.example_input(a)) for a in archs])
    err = lambda pred: float(np.mean(np.abs(pred - now) / now))  # noqa: E731
    assert err(np.array([corrected(a) for a in archs])) < 0.03 < 0.12 < err(np.array([plain(a) for a in archs]))


@pytest.mark.slow
def test_a_steady_machine_leaves_predictions_alone(space, tmp_path):
    timer = SimulatedTimer(seed=2, noise=0.03, spike_p=0.1, drift=1e-5)
    table = built(space, tmp_path, timer)
    drift = check_drift(table, space, timer=timer)
    assert drift.status == "steady" and drift.scale == 1.0 and abs(drift.ratio - 1) <= drift.noise
    assert drift.noise >= MIN_DRIFT


def test_drift_tolerance_grows_with_the_spread_of_either_measurement():
    then = {"median_ms": 1.0, "round_ms": [0.8, 0.9, 1.0, 1.1, 1.2]}  # IQR 0.2: se = 1.253 * 0.148 / sqrt(5) = 8.3 %
    assert compare(then, {"median_ms": 1.12, "round_ms": [1.12] * 5}).status == "steady"  # 12 % < 2 se = 16.6 %
    assert compare(then, {"median_ms": 1.2, "round_ms": [1.2] * 5}).status == "corrected"
    burst = {"median_ms": 1.0, "round_ms": [1.0, 1.0, 1.01, 0.99, 1.0, 1.0, 3.0]}  # one round under load
    assert compare(burst, {"median_ms": 1.1, "round_ms": [1.1] * 7}).status == "corrected"
    assert compare({"median_ms": 1.0}, {"median_ms": 0.9}).scale == pytest.approx(0.9)
    assert compare({"median_ms": 1.0}, {"median_ms": 1.04}).status == "steady"  # below MIN_DRIFT


@pytest.mark.slow
def test_a_table_without_reference_is_reported_unchecked(space, tmp_path):
    table = built(space, tmp_path, SimulatedTimer())
    table.reference = None
    drift = check_drift(table, space, timer=SimulatedTimer())
    assert drift.status == "unchecked" and drift.scale == 1.0 and "supernet latency build" in drift.message


def test_spread_pools_every_round_of_every_session_and_checks_the_budget():
    sessions = [{"median_ms": 0.42, "round_ms": [0.40, 0.42, 0.61]}, {"median_ms": 0.44, "round_ms": [0.44, 0.45, 0.43]}]
    out = pooled(sessions, budget=0.6)
    assert out["latency_measured_ms"] == pytest.approx(0.435) and out["latency_rounds"] == 6
    assert out["latency_sessions_ms"] == [0.42, 0.44] and out["latency_under_budget"] == pytest.approx(5 / 6)
    assert out["latency_vs_budget"] == "under"  # one round over the budget of 6 lies outside p10-p90 (0.41-0.53)
    assert pooled([{"median_ms": 0.6, "round_ms": [0.55, 0.58, 0.62, 0.65]}], 0.6)["latency_vs_budget"] == "crosses"
    assert pooled([{"median_ms": 0.3, "round_ms": [0.3, 0.31]}], 0.6)["latency_vs_budget"] == "under"
    assert pooled([{"median_ms": 0.7, "round_ms": [0.65, 0.7]}], 0.6)["latency_vs_budget"] == "over"
    assert "latency_vs_budget" not in pooled(sessions, None)


@pytest.mark.slow
def test_sessions_run_in_fresh_processes(space):
    archs = [space.smallest(), space.largest()]
    cfg = MeasureConfig(target="cpu", threads=1, warmup=1, repeats=3, min_seconds=0.0, rounds=2)
    results = sessions_of(space, archs, cfg, sessions=2, fresh=True)
    assert len(results) == 2 and all(len(s) == 2 and len(s[0]["round_ms"]) == 2 for s in results)
    assert all(s[1]["median_ms"] > 0 for s in results)


@pytest.mark.slow
def test_search_on_a_slowed_machine_warns_corrects_and_flags(trained, tmp_path):  # noqa: F811
    from supernet.api import search
    from supernet.hardware.latency_api import build_latency, find_table
    from supernet.io.checkpoint import load_checkpoint
    space = load_checkpoint(trained)[0].space
    timer = SimulatedTimer(seed=3, noise=0.02, spike_p=0.05, burst_p=0.1)
    path = build_latency(str(trained), CFG, archs=12, folder=tmp_path / "lat", progress=False, timer=timer)
    cost = latency_cost(find_table("cpu", space, path), space)
    budget = 1.2 * (cost(space.smallest()) + cost(space.largest())) / 2
    timer.speed = 1.2
    config = SearchConfig(objectives=("accuracy", "latency"), budgets={"latency": budget}, target="cpu",
                          evaluations=12, generations=4, population=12, per_round=4, uncertain=1, predictor="ridge")
    with pytest.warns(UserWarning, match=r"(19|20|21)% slower"):
        result = search(trained, config, tmp_path / "run", latency_table=path, progress=False, tensorboard=False,
                        latency_timer=timer)
    assert "% slower than when the latency table was built" in result.warnings[0]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["source"]["latency_drift"]
    assert saved["status"] == "corrected" and saved["scale"] == pytest.approx(1.2, rel=0.03)
    for row in result.front:  # predictions (scaled) agree with what the slowed machine measures
        assert row["latency"] == pytest.approx(row["latency_measured_ms"], rel=0.1)
        lo, hi = row["latency_spread_ms"]
        assert lo <= row["latency_measured_ms"] <= hi and row["latency_rounds"] == 2 * CFG.rounds
        assert row["latency_vs_budget"] in ("under", "crosses", "over") and 0 <= row["latency_under_budget"] <= 1
    pareto = json.loads((tmp_path / "run" / "pareto.json").read_text())
    check = pareto["latency_check"]
    assert check["drift"]["status"] == "corrected" and check["budget_ms"] == pytest.approx(budget)
    assert check["sessions"] == 2 and all("latency_spread_ms" in r for r in pareto["front"])
    pick = pareto["picks"]["max-accuracy-under-budget"]
    assert pick["latency_under_budget"] is not None and pick["latency_vs_budget"] in ("under", "crosses", "over")
    front = {r["index"]: r for r in json.loads((tmp_path / "run" / "front_latency.json").read_text())["front"]}
    assert {r["index"] for r in result.front if r["latency_vs_budget"] != "under"} <= set(check["flagged"])
    assert all(front[i]["latency_vs_budget"] != "under" for i in check["flagged"]) and result.latency_check == check


def test_cli_prints_spread_certainty_and_flags(capsys):
    from supernet.cli.search import _print_search
    row = lambda i, ms, flag: {"index": i, "accuracy": 0.9, "latency": 0.45, "arch": {"d": [1]},  # noqa: E731
                               "latency_measured_ms": ms, "latency_spread_ms": [ms - 0.05, ms + 0.1],
                               "latency_rounds": 14, "latency_under_budget": 0.5, "latency_vs_budget": flag}
    front = [row(3, 0.41, "under"), row(7, 0.55, "crosses")]
    picks = {"best-accuracy": row(1, 0.9, "over"), "max-accuracy-under-budget": front[1]}
    notes = budget_notes(front, picks, 0.6)
    drift = {"status": "steady", "message": "reference arch 1 ms when the table was built, 1.01 ms now"}
    result = SearchResult(None, [], front, 0.5, None, picks, 0, notes, {"drift": drift})
    _print_search(result)
    out = capsys.readouterr().out
    assert "measured 0.41 ms (p10-p90 0.36-0.51, under budget in 50% of 14 rounds)" in out
    assert "[CROSSES BUDGET]" in out and out.count("[CROSSES BUDGET]") == 2  # the front row and the pick
    assert "[OVER BUDGET]" not in out and "best-accuracy (evaluation 1)" not in out  # its rule ignores budgets
    assert "latency table held: reference arch 1 ms when the table was built" in out
    assert "warning: pick max-accuracy-under-budget (evaluation 7) measured 0.55 ms" in out
    assert "warning: 1 of 2 front archs are not clearly under the 0.6 ms budget" in out
