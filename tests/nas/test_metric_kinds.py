"""Each metric declares whether it is a quality or a cost; the picks read that, not a list of names."""
import pytest

from supernet.core.arch import Dimension
from supernet.core.space import SearchSpace
from supernet.nas.metrics import METRICS, get_metric
from supernet.nas.picks import pick
from supernet.nas.plan import make_plan

SPACE = SearchSpace([Dimension("w", (1, 2, 3))])


def test_every_metric_has_a_kind_and_a_users_direction_gives_it():
    builtin = {"accuracy": "quality", "flops": "cost", "params": "cost", "latency": "cost", "loss": "quality"}
    assert {n: METRICS[n].kind for n in builtin} == builtin
    # others registered by searches run earlier in this process (e.g. a multi-target search's latency@<device>)
    assert all(m.kind in ("quality", "cost") for m in METRICS.values())
    assert get_metric("energy:min").kind == "cost" and get_metric("f1:max").kind == "quality"


def test_a_users_cost_named_first_is_not_taken_for_the_quality():
    plan = make_plan(SPACE, ["energy:min", "accuracy"], {})
    rows = [{"index": 0, "arch": {"w": 1}, "energy": 1.0, "accuracy": 0.5},
            {"index": 1, "arch": {"w": 2}, "energy": 5.0, "accuracy": 0.9},
            {"index": 2, "arch": {"w": 3}, "energy": 9.0, "accuracy": 0.9}]
    best = pick(plan, rows, "best-accuracy")
    assert best["index"] == 1  # the most accurate; of the two, the lower energy (the first cost)


def test_a_pick_without_a_quality_says_so():
    from supernet.core.errors import SupernetError
    plan = make_plan(SPACE, ["energy:min", "flops"], {})
    with pytest.raises(SupernetError, match="needs a search with accuracy"):
        pick(plan, [{"index": 0, "arch": {"w": 1}, "energy": 1.0, "flops": 3}], "best-accuracy")
