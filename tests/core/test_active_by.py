"""Depth gating declared by a bring-your-own space (``SearchSpace(..., active_by=...)``)."""
import itertools

import numpy as np
import pytest

from supernet import Dimension, SearchSpace, SupernetError
from supernet.nas.problem import Decoder


def staged():
    return SearchSpace([Dimension("ks", (3, 5), 4), Dimension("d", (1, 2), 2), Dimension("r", (8, 16))],
                       active_by={"ks": "d"})


def test_positions_past_a_stage_depth_are_canonical_zeros():
    space = staged()
    a = space.make({"ks": [5, 3, 3, 5], "d": [1, 2], "r": 8})
    b = space.make({"ks": [5, 5, 3, 5], "d": [1, 2], "r": 8})
    assert a == b and a["ks"] == (5, 0, 3, 5)
    codes, active = space.encode_many([a])
    assert active[0, :4].tolist() == [True, False, True, True]


def test_a_scalar_depth_gates_the_tail():
    space = SearchSpace([Dimension("depth", (1, 2, 3)), Dimension("width", (8, 16), 3)], active_by={"width": "depth"})
    assert space.make({"depth": 1, "width": [16, 16, 8]})["width"] == (16, 0, 0)
    assert space.cardinality() == 2 + 4 + 8


def test_cardinality_counts_distinct_canonical_archs():
    space = staged()
    grid = {space.decode(np.array(x)) for x in itertools.product(*[range(h + 1) for h in space.bounds()[1]])}
    assert space.cardinality() == len(grid) == (2 + 4) ** 2 * 2


def test_vectorised_canonical_codes_match_decoding_each_row():
    space, rng = staged(), np.random.default_rng(0)
    X = rng.integers(0, 2, (200, space.n_var))
    fast = Decoder(space).canonical(X)
    slow = np.array([space.encode(space.decode(x)) for x in X], dtype=float)
    assert np.array_equal(fast, slow)
    assert (fast != X).any()  # some rows did change


@pytest.mark.parametrize("rule, text", [({"ks": "nope"}, "no dimension 'nope'"), ({"r": "d"}, "single value"),
                                        ({"ks": "r"}, "allows 24 but each"), ({"ks": "t"}, "not a multiple")])
def test_bad_declarations_name_the_entry(rule, text):
    with pytest.raises(SupernetError, match=text):
        SearchSpace([Dimension("ks", (3, 5), 4), Dimension("d", (1, 2), 2), Dimension("r", (8, 16, 24)), Dimension("t", (1,), 3)],
                    active_by=rule)


@pytest.mark.slow
def test_a_search_evaluates_each_canonical_arch_once():
    from supernet import SearchConfig, run_search
    space, seen = staged(), []

    def evaluate(arch):
        seen.append(arch)
        return {"accuracy": sum(arch["ks"]) / 20 + arch["r"] / 100}
    cfg = SearchConfig(objectives=("accuracy", "flops"), evaluations=40, per_round=6, generations=4, population=12,
                       predictor="ridge", uncertain=1)
    result = run_search(space, evaluate, cfg, costs={"flops": lambda a: sum(a["ks"]) * a["r"]})
    assert len(seen) == len(set(seen)) == len(result.evaluations)
    assert all(space.make(a) == a for a in seen)  # every evaluated arch is canonical
