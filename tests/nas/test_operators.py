"""NSGA-II's variation operators by dimension kind: SBX / PM on ordered positions (exactly the plain
operators for an all-ordered space), uniform crossover and random reset on categorical ones."""
import numpy as np
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair

from supernet import Dimension, SearchSpace, run_search
from supernet.nas.search_config import SearchConfig
from supernet.nas.operators import categorical_positions, variation

OPS = ("none", "skip", "conv1x1", "conv3x3", "pool")


def mixed_space():
    return SearchSpace([Dimension("width", (8, 16, 24, 32, 40), 2), Dimension("op", OPS, 3, kind="categorical")])


def problem_of(space):
    xl, xu = space.bounds()
    return Problem(n_var=space.n_var, n_obj=1, xl=xl, xu=xu, vtype=int)


def matings(n, n_var, seed):
    """Parents far apart: (0, ..., 0) x (4, ..., 4) and random pairs, as a pymoo mating list."""
    rng = np.random.default_rng(seed)
    a = np.vstack([np.zeros((n // 2, n_var)), rng.integers(0, 5, (n - n // 2, n_var))])
    b = np.vstack([np.full((n // 2, n_var), 4), rng.integers(0, 5, (n - n // 2, n_var))])
    pop = Population.new("X", np.vstack([a, b]))
    return pop, np.column_stack([np.arange(n), np.arange(n, 2 * n)]), a, b


def test_the_mask_follows_dimensions_and_positions():
    assert categorical_positions(mixed_space()).tolist() == [False, False, True, True, True]


def test_an_all_ordered_space_gets_the_plain_operators_draw_for_draw():
    space = SearchSpace([Dimension("width", (8, 16, 24, 32, 40), 5)])
    problem = problem_of(space)
    crossover, mutation = variation(space)
    pop, parents, _, _ = matings(40, 5, 0)
    plain = SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair())
    ours = crossover(problem, pop, parents, random_state=np.random.default_rng(1), to_numpy=True)
    assert np.array_equal(ours, plain(problem, pop, parents, random_state=np.random.default_rng(1), to_numpy=True))
    pm = PM(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair())
    after = mutation(problem, Population.new("X", ours), random_state=np.random.default_rng(2), to_numpy=True)
    same = pm(problem, Population.new("X", ours), random_state=np.random.default_rng(2), to_numpy=True)
    assert np.array_equal(after, same)


def test_categorical_children_take_each_position_from_one_parent_or_the_other():
    space = mixed_space()
    problem, cat = problem_of(space), categorical_positions(space)
    crossover, _ = variation(space)
    pop, parents, a, b = matings(400, space.n_var, 0)
    kids = crossover(problem, pop, parents, random_state=np.random.default_rng(3), to_numpy=True)
    first, second = kids[:400], kids[400:]  # pymoo stacks child 0 of every mating, then child 1
    crossed = ~np.all(first == a, axis=1) | ~np.all(second == b, axis=1)
    for child, other, mine, theirs in ((first, second, a, b), (second, first, b, a)):
        took = child[:, cat]
        assert np.all((took == mine[:, cat]) | (took == theirs[:, cat]))
        assert np.array_equal(took + other[:, cat], mine[:, cat] + theirs[:, cat])  # complementary children
    far = np.arange(200)[crossed[:200]]  # parents 0 and 4 on every position
    share = np.mean(first[far][:, cat] == 4)
    assert 0.4 < share < 0.6  # each parent about half the time
    between = (first[far][:, ~cat] > 0) & (first[far][:, ~cat] < 4)
    assert between.any()  # ordered positions still blend (SBX)


def test_random_reset_moves_a_categorical_position_to_another_choice_uniformly():
    space = mixed_space()
    problem, cat = problem_of(space), categorical_positions(space)
    _, mutation = variation(space)
    X = np.tile([2, 2, 1, 1, 1], (4000, 1)).astype(float)
    out = mutation(problem, Population.new("X", X.copy()), random_state=np.random.default_rng(4), to_numpy=True)
    changed = out[:, cat] != 1
    rate = changed.mean()
    assert 0.9 * (1 / space.n_var) * 0.8 < rate < 0.9 * (1 / space.n_var) * 1.2  # 0.9 of rows, then 1/n_var each
    counts = np.bincount(out[:, cat][changed].astype(int), minlength=5)
    assert counts[1] == 0 and all(c > 0.8 * changed.sum() / 4 for c in counts[[0, 2, 3, 4]])  # the others alike
    assert np.all(out == np.rint(out)) and out.min() >= 0 and out.max() <= 4


def test_nsga2_searches_a_mixed_space_with_distinct_valid_archs():
    space = mixed_space()
    gain = {"none": 0.0, "skip": 0.1, "conv1x1": 0.3, "conv3x3": 1.0, "pool": 0.2}

    def evaluate(arch):
        return {"accuracy": sum(gain[o] for o in arch["op"]), "latency": float(sum(arch["width"]))}
    config = SearchConfig(objectives=("accuracy", "latency"), evaluations=60, strategy="nsga2", seed=0,
                          population=12, generations=5, initial=12)
    rows = run_search(space, evaluate, config, tensorboard=False).evaluations
    archs = [space.validate(r["arch"]) for r in rows]
    assert len(rows) == 60 and len(set(archs)) == 60
