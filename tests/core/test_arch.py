import itertools
import json

import numpy as np
import pytest
from tests.support import tiny_variants

from supernet.core.arch import Arch
from supernet.core.errors import SupernetError
from supernet.core.registry import get_space, space_config


def space_of(name, variant):
    entry = get_space(name)
    return entry.build_space(space_config(name, variant))


def test_arch_is_immutable_hashable_value():
    a = Arch({"d": [1, 2], "r": 16})
    b = Arch({"r": 16, "d": (1, 2)})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.foo = 1
    assert a.replace(r=20)["r"] == 20 and a["r"] == 16
    assert Arch.from_json(a.to_json()) == a


def test_invalid_json_is_a_clear_error():
    with pytest.raises(SupernetError, match="not valid JSON"):
        Arch.from_json("{not json")
    with pytest.raises(SupernetError, match="object"):
        Arch.from_json("[1, 2]")


@pytest.mark.parametrize("name,variant", tiny_variants())
def test_canonical_points_and_json_round_trip(name, variant):
    space = space_of(name, variant)
    rng = np.random.default_rng(1)
    for arch in [space.smallest(), space.largest(), space.median()] + [space.sample(rng) for _ in range(20)]:
        assert space.make(arch) == arch
        assert space.make(json.loads(arch.to_json())) == arch
        assert space.decode(space.encode(arch)) == arch


@pytest.mark.slow
@pytest.mark.parametrize("name,variant", tiny_variants())
def test_cardinality_counts_distinct_canonical_archs(name, variant):
    space = space_of(name, variant)
    lo, hi = space.bounds()
    distinct = {space.decode(x) for x in itertools.product(*[range(h + 1) for h in hi])}
    assert len(distinct) == space.cardinality() == len(space)


def test_validate_names_field_and_allowed_values():
    space = space_of("mobilenet", "tiny")
    good = space.largest().to_dict()
    with pytest.raises(SupernetError, match=r"ks\[0\] = 9 .*allowed values are \[3, 5\]"):
        space.validate({**good, "ks": [9] + good["ks"][1:]})
    with pytest.raises(SupernetError, match=r"r = 7 .*\[16, 20\]"):
        space.validate({**good, "r": 7})
    with pytest.raises(SupernetError, match="unknown arch field 'width'"):
        space.validate({**good, "width": 3})
    with pytest.raises(SupernetError, match="missing field 'd'"):
        space.validate({k: v for k, v in good.items() if k != "d"})
    with pytest.raises(SupernetError, match="list of 4 integers"):
        space.validate({**good, "e": [2]})


def test_inactive_positions_canonicalise_to_zero():
    space = space_of("mobilenet", "tiny")  # 2 stages x max depth 2
    a = space.make({"ks": [5, 5, 3, 5], "e": [3, 2, 2, 3], "d": [1, 2], "r": 16})
    b = space.make({"ks": [5, 3, 3, 5], "e": [3, 3, 2, 3], "d": [1, 2], "r": 16})
    assert a == b and a["ks"] == (5, 0, 3, 5) and a["e"] == (3, 0, 2, 3)


def test_sampling_is_seeded():
    space = space_of("mobilenet", "tiny")
    draw = lambda seed: [space.sample(np.random.default_rng(seed)) for _ in range(5)]
    assert draw(3) == draw(3) and draw(3) != draw(4)


def test_arch_pickles_as_an_equal_value():
    import pickle
    arch = Arch({"depth": 3, "kernel": (3, 5, 0)})
    copy = pickle.loads(pickle.dumps(arch))
    assert copy == arch and hash(copy) == hash(arch) and copy["kernel"] == (3, 5, 0)


# -- categorical and non-integer choices ---------------------------------------------------
from supernet.core.arch import Dimension
from supernet.core.space import SearchSpace, space_signature  # noqa: E402


def mixed_space():
    return SearchSpace([Dimension("op", ("none", "skip", "conv3x3"), 3, kind="categorical"),
                        Dimension("width", (0.25, 0.5, 1.0)), Dimension("act", ("relu", "gelu")),
                        Dimension("depth", (1, 2, 3))])


def test_string_and_float_choices_round_trip_through_encode_decode_and_json():
    space = mixed_space()
    rng = np.random.default_rng(0)
    for arch in [space.smallest(), space.largest(), space.median()] + [space.sample(rng) for _ in range(30)]:
        assert space.decode(space.encode(arch)) == arch
        assert space.make(json.loads(arch.to_json())) == arch and Arch.from_json(arch.to_json()) == arch
    arch = space.make({"op": ["skip", "none", "conv3x3"], "width": 0.5, "act": "gelu", "depth": 2.0})
    assert space.encode(arch).tolist() == [1, 0, 2, 1, 1, 1] and arch["depth"] == 2 and type(arch["depth"]) is int
    assert space.smallest()["width"] == 0.25 and space.smallest()["op"] == ("none",) * 3  # categorical: first
    with pytest.raises(SupernetError, match=r"op\[1\] = 'conv5x5' is not allowed; allowed values are"):
        space.make({**arch.to_dict(), "op": ["skip", "conv5x5", "none"]})
    with pytest.raises(SupernetError, match="act = 1 is not allowed"):
        space.make({**arch.to_dict(), "act": 1})


@pytest.mark.parametrize("choices, message", [((1, 2, 2), "repeats the choice 2"), ((1, 1.0), "repeats the choice"),
                                              (("a", "b", "a"), "repeats the choice 'a'"),
                                              ((True, 2), "must be numbers or strings"), ((), "at least one")])
def test_bad_choices_are_refused(choices, message):
    with pytest.raises(SupernetError, match=message):
        Dimension("x", choices)


def test_unknown_kind_and_duplicate_dimensions_are_refused():
    with pytest.raises(SupernetError, match="kind must be one of"):
        Dimension("x", (1, 2), kind="nominal")
    with pytest.raises(SupernetError, match="declares dimension 'x' twice"):
        SearchSpace([Dimension("x", (1, 2)), Dimension("x", (3, 4))])


def test_cardinality_counts_each_choice_once_and_signature_keeps_old_form():
    space = mixed_space()
    assert space.cardinality() == 3 ** 3 * 3 * 2 * 3
    sig = space_signature(space)
    assert sig["dimensions"][0]["kind"] == "categorical" and "kind" not in sig["dimensions"][1]


def test_encode_many_equals_encode_per_arch_and_marks_inactive_positions():
    space = space_of("mobilenet", "tiny")
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(50)]
    codes, active = space.encode_many([Arch(a.to_dict()) for a in archs])  # fresh values: validated too
    assert codes.tolist() == [space.encode(a).tolist() for a in archs]
    inactive = [set(space.inactive(a)["ks"]) for a in archs]
    assert [[i for i in range(4) if not active[r, i]] for r in range(50)] == [sorted(s) for s in inactive]
    with pytest.raises(SupernetError, match="not allowed"):
        space.encode_many(archs[:3] + [{**archs[0].to_dict(), "r": 7}])
