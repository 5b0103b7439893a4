"""bench_trust's pieces (arch pick, the comparison's pairs), its --quick run, and the trainer
options it measures (a fixed plan with a frozen teacher, kd=none, flops-even sampling)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from tests.support import step_losses, tiny_cfg

from supernet.api import train
from supernet.training.sampling import step_archs
from supernet.training.train_config import with_space_defaults

REPO = Path(__file__).resolve().parents[2]
from benchmarks.bench_trust import seed_mean
from benchmarks.trust_jobs import compare, pick_archs

pytestmark = pytest.mark.slow  # every test here takes seconds: make test-fast leaves them out


def test_compare_joins_on_arch_keys_not_on_order():
    rng = np.random.default_rng(0)
    keys = [f"arch{i}" for i in range(12)]
    truth = dict(zip(keys, rng.uniform(0.9, 0.99, 12)))
    perm = rng.permutation(12)
    shuffled = {keys[j]: truth[keys[i]] for i, j in enumerate(perm)}  # a hand-made permutation of the values
    expected = stats.kendalltau([shuffled[k] for k in keys], [truth[k] for k in keys]).statistic
    listed = dict(reversed(list(shuffled.items())))  # insertion order must not matter
    got = compare(listed, {**truth, "only-here": 0.5})
    assert got["n"] == 12 and got["kendall_tau"] == pytest.approx(expected)
    assert compare(truth, truth)["kendall_tau"] == pytest.approx(1.0)
    assert compare({k: -v for k, v in truth.items()}, truth)["kendall_tau"] == pytest.approx(-1.0)


def test_compare_gaps_are_standalone_minus_supernet_in_points():
    got = compare({"a": 0.95, "b": 0.96, "c": 0.97}, {"a": 0.96, "b": 0.96, "c": 0.965})
    assert got["mean_gap_pt"] == pytest.approx((1.0 + 0.0 - 0.5) / 3)
    assert got["mean_abs_gap_pt"] == pytest.approx(0.5) and got["max_gap_pt"] == pytest.approx(1.0)
    assert compare({"a": 0.9}, {"a": 0.9}) == {"n": 1}


def test_pick_archs_spans_the_flops_range_evenly_and_is_seeded(tiny1d):
    space, cost = tiny1d.space, tiny1d.flops
    archs = pick_archs(space, cost, 6, seed=3)
    assert archs[0] == space.smallest() and archs[-1] == space.largest() and len(set(archs)) == 6
    flops = [cost(a) for a in archs]
    assert flops == sorted(flops)
    assert pick_archs(space, cost, 6, seed=3) == archs


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``(command, report path, plot path)`` of one ``--quick`` run (both tests below read it)."""
    tmp = tmp_path_factory.mktemp("trust")
    out = tmp / "trust.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_trust", "--quick", "--work", str(tmp / "work"), "--out",
           str(out), "--plot", str(tmp / "trust.png")]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    return cmd, out, tmp / "trust.png"


def test_quick_bench_writes_its_report_and_resumes(quick):
    cmd, out, plot = quick
    report = json.loads(out.read_text())
    assert {"runs", "standalone", "finetune", "per_arch", "supernet_steps"} <= set(report)
    run = report["runs"]["default"]
    assert {"largest_test", "smallest_test", "vs_standalone_ce", "vs_standalone_kd", "val_vs_standalone_ce_test"} <= set(run)
    rows = report["per_arch"]
    assert len(rows) == 4 and all(r["standalone_ce"] is not None and r["finetuned"] is not None for r in rows)
    sup = [r["supernet"]["default"] for r in rows]
    alone = [r["standalone_ce"] for r in rows]
    tau = stats.kendalltau(sup, alone).statistic
    assert run["vs_standalone_ce"]["kendall_tau"] == (pytest.approx(tau) if np.isfinite(tau) else None)
    assert run["vs_standalone_ce"]["mean_gap_pt"] == pytest.approx(100 * np.mean(np.subtract(alone, sup)))
    assert plot.stat().st_size > 1000
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0 and "0 jobs to run" in again.stdout


def test_regret_is_the_best_truth_under_the_budget_minus_the_truth_of_the_ranked_best():
    from benchmarks.trust_report import regret, regret_budgets
    cost = {"a": 1, "b": 2, "c": 3, "d": 4}
    truth = {"a": 0.90, "b": 0.95, "c": 0.93, "d": 0.97}
    ranking = {"a": 0.80, "b": 0.70, "c": 0.85, "d": 0.85}  # c and d tie: the cheaper, c, is picked
    got = regret(ranking, truth, cost, [1, 2, 3, 4])
    assert [r["pick"] for r in got["by_budget"]] == ["a", "a", "c", "c"]
    assert [r["regret_pt"] for r in got["by_budget"]] == pytest.approx([0.0, 5.0, 2.0, 4.0])
    assert got["mean_pt"] == pytest.approx(2.75) and got["max_pt"] == pytest.approx(5.0)
    assert regret(truth, truth, cost, [1, 4])["mean_pt"] == 0.0  # ranking by the truth itself loses nothing
    assert regret_budgets(list(range(1, 11))) == [1, 3, 5, 7, 9]  # quantiles 0.1 .. 0.9, each an arch's cost


def test_standalone_results_are_taken_from_an_earlier_report_only_when_it_matches(quick, tmp_path):
    _, earlier, _ = quick
    report = json.loads(earlier.read_text())
    again = [sys.executable, "-m", "benchmarks.bench_trust", "--quick", "--work", str(tmp_path / "b"), "--out",
             str(tmp_path / "b.json"), "--plot", "", "--finetune-steps", "0", "--standalone-from", str(earlier),
             "--no-kd"]
    out = subprocess.run(again, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0 and "4 stand-alone results taken" in out.stdout and "1 jobs to run" in out.stdout
    rows = json.loads((tmp_path / "b.json").read_text())["per_arch"]
    assert [r["standalone_ce"] for r in rows] == [r["standalone_ce"] for r in report["per_arch"]]
    report["supernet_steps"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(report))
    bad = subprocess.run(again[:-3] + ["--standalone-from", str(tmp_path / "bad.json")], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "differ from this run's" in bad.stderr


def test_seed_mean_averages_each_arch_over_the_seeds_that_all_have_it():
    table = seed_mean([{"a": 0.90, "b": 0.80, "c": 0.70}, {"a": 0.70, "c": 0.75}, {"c": 0.80, "a": 0.80}])
    assert table == {"a": pytest.approx(0.80), "c": pytest.approx(0.75)}


def test_bench_refuses_an_unknown_run(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_trust", "--runs", "default,nope",
                             "--work", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown run 'nope'" in result.stderr


def test_kd_none_trains_every_sandwich_arch_on_the_labels(npz_data, tmp_path):
    rows = step_losses(train(tiny_cfg(npz_data, kd="none", steps=2), tmp_path / "nokd"))
    assert all("kd/mean_divergence" not in r and {"loss/largest", "loss/smallest", "loss/random1"} <= set(r)
               for r in rows)


def test_flops_even_sampling_reaches_the_top_of_the_range_more_often(tiny1d):
    space, cost = tiny1d.space, tiny1d.flops
    lo, hi = cost(space.smallest()), cost(space.largest())
    top = lo + 0.8 * (hi - lo)

    def share(strategy):
        draws = [a for s in range(150) for a in step_archs(space, strategy, 2, 0, s, cost=cost)[2:]]
        return np.mean([cost(a) >= top for a in draws])
    assert share("flops-even") > share("sandwich") + 0.05
    assert step_archs(space, "flops-even", 2, 0, 7, cost=cost) == step_archs(space, "flops-even", 2, 0, 7, cost=cost)


def test_trainer_with_plan_and_teacher_distils_one_arch(tiny1d):
    from supernet.core.placement import CPU
    from supernet.core.task import make_task
    from supernet.training.finetune import train_subnet
    arch = tiny1d.space.smallest()
    net = tiny1d.extract(arch)
    teacher_net = tiny1d.extract(tiny1d.space.largest()).eval()
    teacher = lambda x: teacher_net(tiny1d.prepare_input(x, tiny1d.space.largest()))  # noqa: E731
    before = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    batches = iter([(torch.randn(8, 1, 20, generator=g), torch.randint(0, 10, (8,), generator=g))] * 3)
    cfg = tiny_cfg("unused", warmup_steps=1)
    trainer = train_subnet(net, arch, tiny1d, make_task("classification"), cfg, CPU, batches, 3, teacher=teacher)
    record = trainer.backward(*next(iter([(torch.randn(8, 1, 20), torch.zeros(8, dtype=torch.long))])), [arch], 0)
    assert set(record) == {"loss/subnet", "kd/mean_divergence"}
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(teacher_net.state_dict().values(),
                                                 tiny1d.extract(tiny1d.space.largest()).state_dict().values()))


def test_shared_dims_give_every_arch_of_a_step_one_resolution_and_vary_it(tiny1d):
    space = tiny1d.space
    steps = [step_archs(space, "sandwich", 2, 0, s, share=("r",)) for s in range(40)]
    assert all(len({a["r"] for a in archs}) == 1 for archs in steps)
    assert {archs[0]["r"] for archs in steps} == set(next(d for d in space.dimensions if d.name == "r").choices)  # largest at every resolution
    plain = step_archs(space, "sandwich", 2, 0, 3)
    shared = step_archs(space, "sandwich", 2, 0, 3, share=("r",))
    assert [a.replace(r=0) for a in plain] == [a.replace(r=0) for a in shared]  # only r changes


def test_shared_dims_refuse_unknown_and_per_block_dims(tiny1d, npz_data, tmp_path):
    from supernet.core.errors import SupernetError
    from supernet.training.sampling import check_shared
    with pytest.raises(SupernetError, match="not a dimension"):
        check_shared(tiny1d.space, ("res",))
    with pytest.raises(SupernetError, match="positions"):
        check_shared(tiny1d.space, ("ks",))
    with pytest.raises(SupernetError, match="not a dimension"):
        train(tiny_cfg(npz_data, share_dims="r,res", steps=1), tmp_path / "bad")
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_worst_up_trains_the_candidate_with_the_highest_loss_on_the_batch(tiny1d):
    from supernet.core.placement import CPU
    from supernet.core.task import make_task
    from supernet.training.trainer import Trainer
    cfg = with_space_defaults(tiny_cfg("unused", sampling="worst-up"))
    trainer = Trainer(tiny1d, make_task("classification"), cfg, CPU, 4)
    archs = trainer.archs(0)
    slots = [a for a in archs if isinstance(a, tuple)]
    assert len(archs) == 2 + cfg.num_random and len(slots) == cfg.num_random and all(len(s) == 3 for s in slots)
    costs = [[tiny1d.flops(a) for a in s] for s in slots]
    spread = tiny1d.flops(tiny1d.space.largest()) - tiny1d.flops(tiny1d.space.smallest())
    assert all(max(c) - min(c) < 0.25 * spread for c in costs)  # candidates of about one cost
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 20, generator=g), torch.randint(0, 10, (16,), generator=g)
    with torch.no_grad():
        teacher = tiny1d(tiny1d.prepare_input(x, archs[0]), archs[0])
        for slot in slots:
            losses = [trainer.task.distill(tiny1d(tiny1d.prepare_input(x, a), a), teacher)[1].item() for a in slot]
            picked = trainer._hardest(slot, x, y, teacher, (0, 9), trainer.task)
            trainer._picks.clear()
            assert picked == slot[int(np.argmax(losses))]
    record = trainer.backward(x, y, archs, 0)
    assert {"loss/largest", "loss/smallest", "loss/random1", "loss/random2"} <= set(record)
    assert all(isinstance(trainer._picks[(0, i)], type(archs[0])) for i in (2, 3))
