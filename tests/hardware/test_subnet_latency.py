"""MeasuredLatency is an explicit wrapper: whatever its inner evaluator offers, every arch is timed."""
from supernet.core.registry import build_supernet, space_config
from supernet.evaluation.evaluators import as_evaluator
from supernet.hardware.subnet_latency import MeasuredLatency


class Batched:
    """An evaluator that is callable and also has evaluate_many (neither times anything)."""

    def __init__(self, space):
        self.space, self.folder = space, "ckpt"

    def __call__(self, arch):
        return {"accuracy": 0.5}

    def evaluate_many(self, archs):
        return [{"accuracy": 0.5} for _ in archs]


def test_an_inner_evaluator_with_evaluate_many_does_not_skip_latency():
    space = build_supernet("mobilenet", space_config("mobilenet", "tiny")).space
    measured = MeasuredLatency(Batched(space), "cpu", threads=1)
    rows = as_evaluator(measured).evaluate_many([space.smallest(), space.largest()])
    assert all(r["accuracy"] == 0.5 and r["latency"] > 0 and "latency_spread" in r for r in rows), rows
    assert measured.space is space and measured.folder == "ckpt"  # what a search reads of the inner, by name
    only_batched = type("OnlyBatched", (), {"space": space, "evaluate_many": Batched.evaluate_many})()
    assert MeasuredLatency(only_batched, "cpu", threads=1)(space.smallest())["latency"] > 0
