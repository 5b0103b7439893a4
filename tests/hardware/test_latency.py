import json
from dataclasses import replace

import numpy as np
import pytest

from predictors.latency import TableLatencyPredictor
from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config
from supernet.hardware.rounds import (MeasureConfig, combine_rounds, fingerprint, latency_ms, measure, measure_many,
                                      summarise)
from supernet.hardware.latency_table import LatencyTable, build_table, table_path

FAST = MeasureConfig(target="cpu", threads=1, warmup=1, repeats=3, min_seconds=0.0)


@pytest.fixture
def space():
    return get_space("mobilenet").build_space(space_config("mobilenet", "tiny"))


def test_summary_statistics():
    s = summarise([0.001] * 8 + [0.002, 0.010])
    assert s["median_ms"] == pytest.approx(1.0) and s["p90_ms"] == pytest.approx(2.8) and s["p10_ms"] == pytest.approx(1.0)
    assert s["trimmed_mean_ms"] == pytest.approx(1.125) and s["repeats"] == 10


@pytest.mark.parametrize("target", ["cpu", "onnxruntime-cpu"])
def test_measure_static_subnet(space, target):
    arch = space.largest()
    cfg = MeasureConfig(target=target, threads=1, warmup=1, repeats=3, min_seconds=0.0)
    result = measure(space.build_static(arch), space.input_shape(arch), cfg)
    assert 0 < result["median_ms"] <= result["p90_ms"] and result["repeats"] == 3


def test_rounds_combine_to_the_median_of_round_statistics():
    rounds = [{"median_ms": m, "p90_ms": 2 * m, "trimmed_mean_ms": m, "repeats": 5} for m in (1.0, 9.0, 2.0)]
    out = combine_rounds(rounds)
    assert out["median_ms"] == 2.0 and out["p90_ms"] == 4.0 and out["repeats"] == 15 and out["rounds"] == 3


def interfered(slow_share: list[float]):
    """A stand-in clock: a module's calls take 1 ms per 1,000 parameters, and in the ``k``-th timing (cycling)
    the share ``slow_share[k]`` of them is slowed 1.7x (other tenants), never sped up."""
    rounds = iter(slow_share * 1000)

    def timer(module, x, cfg, path):
        base = sum(p.numel() for p in module.parameters()) * 1e-6
        slow = round(next(rounds) * cfg.repeats)
        return [base * 1.7] * slow + [base] * (cfg.repeats - slow)
    return timer


def test_p10_statistic_keeps_the_fast_calls_where_interference_moves_the_median(space, tmp_path):
    archs = [space.smallest(), space.largest()]
    base = [sum(p.numel() for p in space.build_static(a).parameters()) * 1e-3 for a in archs]
    cfg = MeasureConfig(target="cpu", threads=1, warmup=0, repeats=10, min_seconds=0.0, rounds=3)
    jobs = [(lambda a=a: space.build_static(a), space.input_shape(a)) for a in archs]
    shares = [0.6, 0.7, 0.8, 0.0, 0.6, 0.8]  # any 3 timings: at least 2 mostly slow; every one >= 2 fast calls
    p10 = measure_many(jobs, cfg, timer=interfered(shares))  # the default statistic
    median = measure_many(jobs, replace(cfg, statistic="median"), timer=interfered(shares))
    assert [latency_ms(r) for r in p10] == pytest.approx(base) and all(r["spread"] < 1e-9 for r in p10)
    assert [latency_ms(r) for r in median] == pytest.approx([1.7 * b for b in base])
    assert all(r["statistic"] == "p10" for r in p10) and max(median[0]["round_ms"]) == pytest.approx(1.7 * base[0])
    table = build_table(LatencyTable("mobilenet", space.config.to_dict(), replace(cfg, statistic="p10")), space,
                        tmp_path / "t.json", n_archs=2, progress=False, timer=interfered(shares))
    loaded = LatencyTable.load(tmp_path / "t.json")  # its device profile names the statistic and matches here
    assert loaded.cfg.statistic == "p10" and loaded.measured(space)[1].tolist() == [latency_ms(r) for r in table.archs]
    one = sum(p.numel() for p in space.build_static(space.make(loaded.archs[0]["arch"])).parameters()) * 1e-3
    assert loaded.measured(space)[1][0] == pytest.approx(one)


def test_statistic_is_part_of_the_device_profile_unless_median(tmp_path):
    median = replace(FAST, statistic="median")
    assert "statistic" not in fingerprint(median)  # median tables, built before it existed, keep their file names
    assert FAST.statistic == "p10" and fingerprint(FAST)["statistic"] == "p10"
    assert table_path(tmp_path, FAST) != table_path(tmp_path, median)
    with pytest.raises(SupernetError, match="--statistic must be one of"):
        replace(FAST, statistic="mean").check()
    assert latency_ms({"median_ms": 2.5}) == 2.5  # a result stored before the statistic existed


@pytest.mark.parametrize("target", ["cpu", "onnxruntime-cpu"])
def test_measure_many_times_every_job_once_per_round(space, target, monkeypatch):
    import supernet.hardware.rounds as latency
    calls, cfg = [], MeasureConfig(target=target, threads=1, warmup=0, repeats=3, min_seconds=0.0, rounds=4)
    real = latency.measure
    monkeypatch.setattr(latency, "measure", lambda m, shape, c, path=None, **kw: calls.append(path) or real(m, shape, c, path, **kw))
    archs = [space.smallest(), space.largest(), space.median()]
    jobs = [(lambda a=a: space.build_static(a), space.input_shape(a)) for a in archs]
    channels, length = jobs[1][1]
    jobs[1] = (jobs[1][0], (channels, 1000 * length))  # >100x the smallest's work: its time tells the jobs apart
    results = measure_many(jobs, cfg)
    assert len(calls) == 12 and all(r["rounds"] == 4 and r["repeats"] == 12 for r in results)
    first = [calls[k * 3:(k + 1) * 3] for k in range(4)]
    assert len({tuple(r) for r in first}) > 1  # a fresh order each round
    assert results[1]["median_ms"] > 3 * results[0]["median_ms"]  # each result is its own job's


def test_unknown_target_and_missing_gpu_are_clear_errors(space):
    with pytest.raises(SupernetError, match="unknown latency target"):
        MeasureConfig(target="tpu").check()
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(SupernetError, match="needs a CUDA GPU"):
            MeasureConfig(target="cuda").check()


@pytest.mark.parametrize("target", ["cuda-graph", "ort-cuda", "ort-tensorrt"])
def test_gpu_targets_are_refused_in_one_line_where_they_cannot_run(space, target, monkeypatch):
    import torch

    from supernet.hardware import timers
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the refusal for a missing GPU cannot happen here")
    with pytest.raises(SupernetError, match=f"target '{target}' needs a CUDA GPU, and none is visible here"):
        MeasureConfig(target=target).check()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU, but the CPU build of onnxruntime
    problem = timers.target_problem(target)
    if target == "cuda-graph":
        assert problem is None
    else:
        assert "ExecutionProvider" in problem and "pip install onnxruntime-gpu" in problem and "\n" not in problem


@pytest.mark.slow
def test_cli_refuses_a_gpu_target_without_a_gpu(tmp_path):
    import torch
    from tests.support import assert_one_line_error, cli
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    result = cli("latency", "build", "mobilenet", "--variant", "tiny", "--target", "ort-cuda", "--out", tmp_path)
    assert_one_line_error(result, "target 'ort-cuda' needs a CUDA GPU")
    assert not any(tmp_path.iterdir())


def test_kernel_counts_add_up_and_follow_the_block(space):
    import torch

    from supernet.hardware.kernels import count_kernels
    units = {key: count_kernels(build(), torch.zeros((1,) + shape)) for key, build, shape in space.all_latency_units()}
    for arch in [space.smallest(), space.largest(), space.median()]:
        whole = count_kernels(space.build_static(arch), space.example_input(arch))
        assert whole == sum(units[key] for key, _, _ in space.latency_units(arch))
    se = [n for key, n in units.items() if key.startswith("mb:") and "-se1-" in key]
    plain = [n for key, n in units.items() if key.startswith("mb:") and "-se0-" in key]
    assert min(se) > max(plain)  # squeeze-excite adds pooling, two convs, activations and a product


def test_correction_learns_a_launch_bound_device_from_kernel_counts(space, tmp_path):
    """A launch-bound GPU: a whole net costs 4 us per kernel plus 30 us per call on top of its compute,
    which its units timed alone did not show; only the kernel-count feature can carry that."""
    from supernet.hardware.latency_table import count_unit_kernels
    table = build_table(LatencyTable("mobilenet", space.config.to_dict(), FAST), space, tmp_path / "t.json",
                        n_archs=0, progress=False)
    kernels = count_unit_kernels(table, space)
    rng = np.random.default_rng(3)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(80)))
    with_k = TableLatencyPredictor(space, units=table.units, kernels=kernels)
    without = TableLatencyPredictor(space, units=table.units)
    truth = 0.03 + 0.004 * with_k.kernel_counts(archs) + 0.2 * with_k.table_only(archs)
    half = len(archs) // 2
    err = lambda p: float(np.mean(np.abs(p.fit(archs[:half], truth[:half]).predict(archs[half:])[0]  # noqa: E731
                                         - truth[half:]) / truth[half:]))
    assert err(with_k) < 0.005 and err(without) > 2 * err(with_k)


@pytest.mark.slow
def test_table_covers_every_arch_and_round_trips(space, tmp_path):
    path = table_path(tmp_path, FAST)
    assert path.name.startswith("cpu-") and path.suffix == ".json"
    table = build_table(LatencyTable("mobilenet", space.config.to_dict(), FAST), space, path, n_archs=6,
                        progress=False)
    assert len(table.units) == len(list(space.all_latency_units())) and len(table.archs) == 6
    loaded = LatencyTable.load(path)
    rng = np.random.default_rng(0)
    for arch in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(10)]:
        assert loaded.arch_sum(space, arch) == table.arch_sum(space, arch) > 0
    assert loaded.arch_sum(space, space.largest()) > loaded.arch_sum(space, space.smallest())


@pytest.mark.slow
def test_build_resumes_without_remeasuring(space, tmp_path):
    path = tmp_path / "t.json"
    table = build_table(LatencyTable("mobilenet", space.config.to_dict(), FAST), space, path, n_archs=3,
                        progress=False)
    data = json.loads(path.read_text())
    data["units"] = {k: 123.0 for k in list(data["units"])[:5]}  # pretend a build stopped early
    path.write_text(json.dumps(data))
    resumed = build_table(LatencyTable.load(path), space, path, n_archs=5, progress=False)
    assert sum(v == 123.0 for v in resumed.units.values()) == 5
    assert len(resumed.units) == len(table.units) and len(resumed.archs) == 5
    assert resumed.archs[:3] == data["archs"]


def test_table_from_another_device_is_refused(space, tmp_path):
    path = tmp_path / "t.json"
    table = LatencyTable("mobilenet", space.config.to_dict(), FAST, {"stem@16": 1.0})
    table.fingerprint = {**fingerprint(FAST), "cpu": "Some Other CPU"}
    table.save(path)
    with pytest.raises(SupernetError, match="another device profile .*cpu: 'Some Other CPU'"):
        LatencyTable.load(path)
    assert LatencyTable.load(path, check_device=False).units == {"stem@16": 1.0}


def test_table_timed_with_other_cpu_kernels_is_refused_and_an_older_table_still_loads(space, tmp_path):
    """Two VMs often report one CPU model name; PyTorch's vector kernels (``ATEN_CPU_CAPABILITY``) tell them
    apart. A table stored before the kernels and the statistic were recorded loads as a median table."""
    path = tmp_path / "t.json"
    table = LatencyTable("mobilenet", space.config.to_dict(), FAST, {"stem@16": 1.0})
    here = fingerprint(FAST)["cpu_kernels"]
    other = "AVX2" if here != "AVX2" else "DEFAULT"
    table.fingerprint = {**fingerprint(FAST), "cpu_kernels": other}
    table.save(path)
    with pytest.raises(SupernetError, match=f"another device profile .*cpu_kernels: '{other}', here '{here}'"):
        LatencyTable.load(path)
    old = json.loads(path.read_text())
    del old["measure"]["statistic"]
    old["fingerprint"] = {k: v for k, v in fingerprint(replace(FAST, statistic="median")).items() if k != "cpu_kernels"}
    path.write_text(json.dumps(old))
    loaded = LatencyTable.load(path)
    assert loaded.cfg.statistic == "median" and loaded.units == {"stem@16": 1.0}


def test_correction_learns_a_fixed_overhead(space, tmp_path):
    table = build_table(LatencyTable("mobilenet", space.config.to_dict(), FAST), space, tmp_path / "t.json",
                        n_archs=0, progress=False)
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(40)]
    predictor = TableLatencyPredictor(space, units=table.units)
    truth = 0.8 * predictor.table_only(archs) + 0.5  # "measured" = fused (faster) plus a fixed overhead
    predictor.fit(archs[:20], truth[:20])
    predicted, _ = predictor.predict(archs[20:])
    assert np.abs(predicted - truth[20:]).max() < 0.02 * truth.mean()
    assert np.abs(predictor.table_only(archs[20:]) - truth[20:]).max() > 0.05 * truth.mean()
    predictor.save(tmp_path / "p.json")
    again = TableLatencyPredictor.load(tmp_path / "p.json", space)
    assert np.array_equal(again.predict(archs[20:])[0], predicted)


@pytest.mark.slow
def test_bench_latency_runs_small_and_keeps_cases_it_did_not_rerun(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "bench.json"
    small = ["--variants", "tiny", "--test", "4", "--fit", "5", "--repeats", "3", "--warmup", "0", "--rounds", "1",
             "--unit-rounds", "1", "--repeat-archs", "2", "--out", str(out)]
    for target in ("cpu", "onnxruntime-cpu"):
        result = subprocess.run([sys.executable, "-m", "benchmarks.bench_latency", *small, "--targets", target], capture_output=True,
                                text=True, cwd=repo)
        assert result.returncode == 0, result.stderr
    cases = json.loads(out.read_text())["cases"]
    assert [c["target"] for c in cases] == ["cpu", "onnxruntime-cpu"]
    assert all(len(c["per_arch"]["measured_ms"]) == 4 and c["measure"]["rounds"] == 1 for c in cases)


def test_a_corrected_prediction_stays_within_the_measured_ratios():
    """Five measured subnets at one resolution, an arch far from them: the linear correction alone predicted
    -22.8 ms for an OFA pick (test_ofa_data); the prediction stays within [1/2, 2] x the fit's ratios."""
    from supernet.core.registry import get_space, space_config
    space = get_space("mobilenet").build_space(space_config("mobilenet", "tiny"))
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    units = {key: float(rng.uniform(0.1, 1.0)) for a in archs for key, _, _ in space.latency_units(a)}
    units.update({key: float(rng.uniform(0.1, 1.0)) for a in (space.smallest(), space.largest())
                  for key, _, _ in space.latency_units(a)})
    predictor = TableLatencyPredictor(space, units=units)
    table = predictor.table_only(archs)
    fit = np.argsort(table)[15:20]  # the middle of the range, with a steep made-up trend: extrapolation breaks
    measured = 40 * (table[fit] - table[fit].mean()) + 10 + rng.normal(0, 0.01, 5)
    predictor.fit([archs[i] for i in fit], measured)
    ratios = measured / table[fit]
    got = predictor.predict(archs + [space.smallest(), space.largest()])[0]
    every = np.append(table, predictor.table_only([space.smallest(), space.largest()]))
    assert np.all(got >= ratios.min() / 2 * every - 1e-9) and np.all(got <= 2 * ratios.max() * every + 1e-9)
    assert got.min() > 0


def test_cli_builds_a_p10_table_by_default_and_refuses_an_unknown_statistic(tmp_path, capsys):
    from supernet.cli.latency import reference_line
    from tests.support import assert_refused, run_main
    common = ["latency", "build", "mobilenet", "--variant", "tiny", "--target", "cpu", "--threads", "1", "--archs", "2",
              "--warmup", "0", "--repeats", "5", "--rounds", "2", "--unit-rounds", "1", "--no-progress"]
    status, err = run_main([*common, "--statistic", "mean", "--out", tmp_path / "bad"], capsys)
    assert_refused(status, err, "--statistic")
    assert not (tmp_path / "bad").exists()
    status, _ = run_main([*common, "--out", tmp_path / "t"], capsys)
    [path] = (tmp_path / "t").glob("*.json")
    table = LatencyTable.load(path)
    low, high = table.reference["spread_ms"]
    line = reference_line(path)  # what the build prints after the file's name
    assert f"{latency_ms(table.reference):.3f} ms over 7 rounds, p10-p90 {low:.3f}-{high:.3f} ms" in line
    assert status == 0 and table.cfg.statistic == "p10" and table.fingerprint["statistic"] == "p10"
    for arch in table.archs:  # each round kept its p10 call, the arch its rounds' median
        assert arch["statistic"] == "p10" and arch["latency_ms"] == pytest.approx(float(np.median(arch["round_ms"])))
        assert arch["latency_ms"] <= arch["median_ms"] * 1.0001
    status, _ = run_main([*common, "--statistic", "median", "--out", tmp_path / "m"], capsys)
    [path] = (tmp_path / "m").glob("*.json")
    table = LatencyTable.load(path)
    assert status == 0 and table.cfg.statistic == "median" and "statistic" not in table.fingerprint
    assert all(arch["latency_ms"] == pytest.approx(arch["median_ms"]) for arch in table.archs)
