"""The joint choice of a multi-target round (``supernet.nas.joint``): hypervolume gain summed over the targets."""
from supernet import Dimension, SearchConfig, SearchSpace
from supernet.nas.joint import joint_greedy, split
from supernet.nas.pareto import plan_reference
from supernet.nas.problem import Scorer
from supernet.nas.targets import _target_plans, latency_metric

SPACE = SearchSpace([Dimension("w", tuple(range(1, 9)))])
TARGETS = {"a": lambda arch: float(arch["w"]), "b": lambda arch: float(arch["w"])}
ACCURACY = {1: 0.5, 4: 0.72, 5: 0.83, 6: 0.40, 8: 0.9}  # 1 and 8 measured; 4, 5, 6 predicted


def _setup(budgets):
    cfg = SearchConfig(objectives=("accuracy", "latency")).resolved()
    _, plans = _target_plans(SPACE, cfg, TARGETS, budgets, {})
    archs = {w: SPACE.make({"w": w}) for w in ACCURACY}
    known = {archs[w]: {"accuracy": ACCURACY[w], **{latency_metric(t): float(w) for t in TARGETS}} for w in (1, 8)}
    measure = lambda batch: [({"accuracy": ACCURACY[a["w"]]}, 0.0) for a in batch]  # noqa: E731
    scorers = {t: Scorer(plan, known, measure) for t, plan in plans.items()}
    references = {t: plan_reference(plan, [v for v in known.values() if plan.feasible(v)] or list(known.values()))
                  for t, plan in plans.items()}
    return plans, scorers, references, archs


def test_a_candidate_on_both_fronts_comes_before_a_better_one_on_one_front():
    # w=5 adds a little more than w=4 to target a's front, but breaks b's budget; w=4 improves both fronts
    plans, scorers, references, archs = _setup({"a": 8.0, "b": 4.5})
    pool = [archs[5], archs[4], archs[6]]
    alone = joint_greedy({"a": plans["a"]}, scorers, pool, references, 1)
    assert alone == [archs[5]]
    assert joint_greedy(plans, scorers, pool, references, 1) == [archs[4]]


def test_candidates_adding_no_hypervolume_are_never_chosen():
    plans, scorers, references, archs = _setup({"a": 8.0, "b": 8.0})
    chosen = joint_greedy(plans, scorers, [archs[6], archs[4], archs[5]], references, 3)
    assert sorted(a["w"] for a in chosen) == [4, 5]  # w=6 (0.40 at 6 ms) is dominated by the real w=1
    assert joint_greedy(plans, scorers, [archs[6]], references, 3) == []
    assert joint_greedy(plans, scorers, [archs[4]], {"a": None, "b": None}, 3) == []


def test_split_shares_out_every_unit():
    assert split(10, 3) == [4, 3, 3] and split(2, 3) == [1, 1, 0] and sum(split(133, 7)) == 133
