"""Search that keeps up with cheap evaluations: growing rounds, capped refits, few CSV writes, and the
three rules of issue 34's point 6 (canonical archs, exact costs, baselines under the budget)."""
import csv

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each test runs whole searches

from supernet import Dimension, SearchConfig, SearchSpace, run_search
from supernet.nas import pace
from supernet.nas.loop import fit_set
from supernet.nas.plan import make_plan
from supernet.nas.store import Evaluation

SPACE = SearchSpace([Dimension("w", (1, 2, 3, 4, 5, 6, 7, 8), 3), Dimension("d", (1, 2, 3))], active_by={"w": "d"})


def acc(arch):
    return {"accuracy": float(sum(arch["w"])) / 24 + 0.01 * arch["d"]}


def flops(arch):
    return float(sum(arch["w"]) * 10 + arch["d"])


def config(**kw):
    base = dict(objectives=("accuracy", "flops"), budgets={"flops": 150}, evaluations=60, generations=5,
                population=16, predictor="ridge", per_round=5, uncertain=1)
    return SearchConfig(**{**base, **kw})


def test_baselines_that_break_a_cost_budget_are_not_evaluated():
    result = run_search(SPACE, acc, config(), costs={"flops": flops})
    labels = [r["baseline"] for r in result.evaluations if r["baseline"]]
    assert "largest" not in "+".join(labels) and "smallest" in "+".join(labels)
    assert flops(SPACE.largest()) > 150  # the largest arch does break it


def test_an_exact_cost_is_never_predicted_nor_taken_from_the_evaluator():
    fitted = []

    def factory(name, space, seed):
        from predictors import make_predictor
        p = make_predictor(name, space, seed)
        fit = p.fit

        def spy(archs, y):
            fitted.append(len(y))
            return fit(archs, y)
        p.fit = spy
        return p

    def evaluate(arch):
        return {**acc(arch), "flops": -1.0}  # a wrong value: the cost function wins
    result = run_search(SPACE, evaluate, config(predictor="ridge"), costs={"flops": flops},
                        predictor_factory=factory)
    rounds = len({r["round"] for r in result.evaluations}) - 1
    assert len(fitted) == rounds  # one predictor per guided round: accuracy only, never flops
    assert all(r["flops"] == flops(SPACE.make(r["arch"])) for r in result.evaluations)


def test_rounds_grow_with_the_evaluations_done():
    result = run_search(SPACE, acc, config(evaluations=200, growth=0.25, fast_growth=0.25, budgets={}),
                        costs={"flops": flops})
    sizes = np.bincount([r["round"] for r in result.evaluations])
    done = np.cumsum(sizes)
    for r in range(2, len(sizes) - 1):
        assert sizes[r] == max(5, int(0.25 * done[r - 1])), (r, sizes.tolist())
    assert sizes[len(sizes) - 2] > 5


def test_fit_set_is_capped_and_keeps_the_front():
    plan = make_plan(SPACE, ["accuracy", "flops"], {}, {"flops": flops})
    rng = np.random.default_rng(0)
    archs = list({SPACE.sample(rng) for _ in range(400)})
    rows = [Evaluation(i, a, 1, {**acc(a), "flops": flops(a)}) for i, a in enumerate(archs)]
    chosen = fit_set(plan, rows, np.random.default_rng(1), cap=50)
    assert len(chosen) == 50 and len({e.index for e in chosen}) == 50
    best = max(rows, key=lambda e: e.metrics["accuracy"])
    assert best in chosen
    assert fit_set(plan, rows[:30], rng, cap=50) == rows[:30]


def test_an_interrupt_keeps_every_finished_evaluation_on_disk(tmp_path):
    calls = []

    def evaluate(arch):
        if len(calls) == 37:
            raise KeyboardInterrupt
        calls.append(arch)
        return acc(arch)
    with pytest.raises(KeyboardInterrupt):
        run_search(SPACE, evaluate, config(), costs={"flops": flops}, out=tmp_path / "s", tensorboard=False)
    with open(tmp_path / "s" / "evaluations.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 37
    result = run_search(SPACE, acc, config(), costs={"flops": flops}, out=tmp_path / "s", resume=True,
                        tensorboard=False)
    assert len(result.evaluations) == 60 and len({r["index"] for r in result.evaluations}) == 60


class SlowClock:
    """A clock on which every evaluation takes ``seconds`` (a real subnet's) and nothing else any time."""

    def __init__(self, seconds):
        self.now, self.seconds = 0.0, seconds

    def __call__(self):
        return self.now

    def evaluate(self, arch):
        self.now += self.seconds
        return acc(arch)


def test_cheap_evaluations_double_the_rounds_and_expensive_ones_keep_growth(tmp_path, monkeypatch):
    cheap = run_search(SPACE, acc, config(evaluations=200, growth=0.1, budgets={}), costs={"flops": flops},
                       out=tmp_path / "cheap", tensorboard=False)
    sizes = np.bincount([r["round"] for r in cheap.evaluations])
    done = np.cumsum(sizes)
    assert sizes.tolist()[1:-1] == [max(5, int(done[r - 1])) for r in range(1, len(sizes) - 1)], sizes.tolist()
    assert len(sizes) <= 5 and (tmp_path / "cheap" / "state.json").read_text().count('"cheap": true') == 1
    slow = SlowClock(1.0)  # 1 s an evaluation: not cheap
    monkeypatch.setattr(pace, "clock", slow)
    kept = run_search(SPACE, slow.evaluate, config(evaluations=120, growth=0.1, budgets={}), costs={"flops": flops})
    sizes = np.bincount([r["round"] for r in kept.evaluations])
    done = np.cumsum(sizes)
    assert sizes.tolist()[1:-1] == [max(5, int(0.1 * done[r - 1])) for r in range(1, len(sizes) - 1)]


@pytest.mark.parametrize("stop_at", [40, 49])  # in round 2's NSGA-II picks, in its hill climb
def test_a_cheap_auto_search_chooses_its_model_rarely_and_resumes_exactly(tmp_path, monkeypatch, stop_at):
    """Before ``CHOOSE_AT`` ok results auto is fitted quickly (its first candidate, no choice); between choice
    rounds it is refitted, not cross-validated; a search interrupted in such a round makes the same choice
    again on resume and ends as the uninterrupted one."""
    import json
    monkeypatch.setattr(pace, "CHOOSE_AT", 20)
    fits = []

    def factory(name, space, seed):
        from predictors import make_predictor
        p = make_predictor(name, space, seed, candidates=[("ridge", {}), ("gbt", {"n_estimators": 30, "max_depth": 2})])
        fit = p.fit
        p.fit = lambda archs, y: fits.append(len(y)) or fit(archs, y)
        return p
    cfg = config(evaluations=100, initial=10, predictor="auto", budgets={})
    full = run_search(SPACE, acc, cfg, costs={"flops": flops}, out=tmp_path / "full", tensorboard=False,
                      predictor_factory=factory)
    sizes = np.bincount([r["round"] for r in full.evaluations]).tolist()
    ok_before = np.cumsum(sizes)[:-1].tolist()
    chosen = pace.choice_rounds(ok_before, 20)
    assert len(sizes) >= 4 and 0 < chosen[0] and len(chosen) < len(ok_before) - 1  # quick rounds, then refits
    assert fits == [ok_before[i] for i in chosen]  # a fresh fit (with its choice) in the choice rounds only
    logged = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [row["predictor/accuracy"] for row in logged[1:1 + chosen[0]]] == ["ridge"] * chosen[0]
    calls = []

    def stop(arch):
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        calls.append(arch)
        return acc(arch)
    with pytest.raises(KeyboardInterrupt):
        run_search(SPACE, stop, cfg, costs={"flops": flops}, out=tmp_path / "part", tensorboard=False,
                   predictor_factory=factory)
    run_search(SPACE, acc, cfg, costs={"flops": flops}, out=tmp_path / "part", resume=True, tensorboard=False,
               predictor_factory=factory)
    assert (tmp_path / "part" / "evaluations.csv").read_text() == (tmp_path / "full" / "evaluations.csv").read_text()


def test_the_decoder_builds_each_row_as_decode_then_canonical_would():
    from supernet.nas.problem import Decoder
    space = SearchSpace([Dimension("op", ("conv", "skip", "pool"), 6, kind="categorical"), Dimension("r", (8, 16)),
                         Dimension("d", (1, 2, 3), 2)], active_by={"op": "d"})
    X = np.random.default_rng(0).integers(0, 3, (300, space.n_var))
    archs = Decoder(space).many(X)
    assert archs == [space.canonical(space.decode(np.clip(x, 0, space.bounds()[1]))) for x in X]
    assert all(a._items == space.make(a.to_dict())._items for a in archs)  # same values and value types


def test_neighbours_are_one_position_away_unseen_and_within_the_cost_budget():
    from supernet.nas.candidates import neighbours
    from supernet.nas.problem import Decoder
    plan = make_plan(SPACE, ["accuracy", "flops"], {"flops": 150}, {"flops": flops})
    a, b = SPACE.make({"w": [2, 3, 1], "d": 2}), SPACE.make({"w": [8, 8, 8], "d": 3})
    every = neighbours(plan, Decoder(SPACE), [a], set(), 1000, np.random.default_rng(0))
    x = SPACE.encode(a)
    assert every and all(np.count_nonzero(SPACE.encode(n) != x) == 1 for n in every if n["d"] == a["d"])
    assert all(flops(n) <= 150 for n in every) and a not in every and len(set(every)) == len(every)
    assert SPACE.make({"w": [2, 3, 0], "d": 2}) not in every  # an inactive position: the same arch, not a neighbour
    few = neighbours(plan, Decoder(SPACE), [a, b], set(every[:3]), 4, np.random.default_rng(1))
    assert len(few) == 4 and set(few) <= set(every) - set(every[:3])  # the first arch's neighbours come first


def test_the_config_can_fix_the_pace_and_rejects_a_bad_value():
    from supernet.core.errors import SupernetError
    kept = run_search(SPACE, acc, config(evaluations=120, growth=0.1, budgets={}, cheap=False), costs={"flops": flops})
    sizes = np.bincount([r["round"] for r in kept.evaluations])
    done = np.cumsum(sizes)  # a cheap evaluator, the rounds of an expensive one: growth 0.1, no doubling
    assert len(sizes) > 8 and sizes.tolist()[1:-1] == [max(5, int(0.1 * done[r - 1])) for r in range(1, len(sizes) - 1)]
    with pytest.raises(SupernetError, match="cheap must be True, False or None"):
        run_search(SPACE, acc, config(cheap="yes"), costs={"flops": flops})


def test_a_cheap_round_climbs_from_the_front_it_is_moving():
    """The last quarter of a cheap guided round are real neighbours of the front, taken in steps: some are
    neighbours of archs found earlier in the same round, none repeats an arch."""
    space = SearchSpace([Dimension("w", (1, 2, 3, 4, 5, 6, 7, 8), 3), Dimension("d", (1, 2, 3))])
    result = run_search(space, acc, config(evaluations=200, budgets={}, cheap=True), costs={"flops": flops})
    rows = result.evaluations
    codes = np.array([space.encode(space.make(r["arch"])) for r in rows])
    sizes = np.bincount([r["round"] for r in rows])
    start, within = np.concatenate([[0], np.cumsum(sizes)]), 0
    for r in range(1, len(sizes)):
        climbed = range(start[r + 1] - pace.local_share(sizes[r], True), start[r + 1])
        for i in climbed:
            near = np.flatnonzero((codes[:i] != codes[i]).sum(axis=1) == 1)
            assert len(near), (r, i)  # one position away from an arch evaluated before it
            within += bool((near >= start[r]).any())
    assert within > 0 and len({tuple(c) for c in codes}) == len(codes)


def test_lazy_greedy_hypervolume_picks_what_plain_greedy_picks():
    from supernet.nas.candidates import _greedy_hypervolume
    from supernet.nas.pareto import Reference

    def plain(F, pool, base, k, reference):  # every gain measured again in every step
        taken, current = [], reference.hypervolume(F[base])
        for _ in range(k):
            rest = [i for i in pool if i not in taken]
            gains = [reference.hypervolume(F[base + taken + [i]]) for i in rest]
            if not rest or max(gains) <= current + 1e-12:
                break
            taken.append(rest[int(np.argmax(gains))])
            current = max(gains)
        return taken
    rng, reference = np.random.default_rng(0), Reference((0.0, 0.0), (1.0, 1.0))
    for _ in range(60):
        F = rng.random((int(rng.integers(5, 60)), 2)).round(int(rng.integers(1, 4)))  # rounded: ties
        base = list(range(int(rng.integers(0, 4))))
        pool = [int(i) for i in rng.permutation(np.arange(len(base), len(F)))]
        k = int(rng.integers(1, 12))
        assert _greedy_hypervolume(F, pool, base, k, reference) == plain(F, pool, base, k, reference)


def test_cheap_generations_grow_with_the_round_and_expensive_ones_are_as_configured():
    cfg = config(generations=60)
    assert pace.generations(cfg, False, 10, 50) == 60 and pace.generations(cfg, True) == 30
    assert pace.generations(cfg, True, 50, 50) == pace.MIN_GENERATIONS
    assert pace.generations(cfg, True, 2000, 400) == min(30, int(np.ceil(pace.WORK * 2000 / 400)))
    assert pace.generations(cfg, True, 10**6, 400) == 30


def test_a_cheap_search_syncs_its_files_once_at_the_end(tmp_path, monkeypatch):
    import os
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    cheap = run_search(SPACE, acc, config(evaluations=120, initial=10, budgets={}, cheap=True), costs={"flops": flops},
                       out=tmp_path / "cheap", tensorboard=False)
    rounds, cheap_syncs = len({r["round"] for r in cheap.evaluations}), len(synced)
    synced.clear()
    run_search(SPACE, acc, config(evaluations=120, initial=10, budgets={}, cheap=False), costs={"flops": flops},
               out=tmp_path / "slow", tensorboard=False)
    assert rounds >= 4 and cheap_syncs <= 4  # config.json, then the final CSV, pareto.json and state.json
    assert len(synced) >= 3 * 8  # an expensive search syncs CSV, pareto.json and state.json every round
    assert '"next_round"' in (tmp_path / "cheap" / "state.json").read_text()
