"""``--threads`` decided once, with the placement, and honoured everywhere: the per-subnet latency clock of a
latency search, the evaluations of ``evaluate`` and ``search`` (the API takes it too), and nothing but
:func:`supernet.core.placement.torch_threads` sets torch's thread count."""
import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from supernet import SearchConfig, SupernetError, TrainConfig
from supernet.api import evaluate, search, train
from supernet.core.placement import CPU, Placement, torch_threads

REPO = Path(__file__).resolve().parents[2]


def other_than_now() -> int:
    """A thread count different from the current one (so that a count left alone is told apart)."""
    return 1 if torch.get_num_threads() != 1 else 3


def spy(monkeypatch, module, name: str) -> list[int]:
    """Record torch's thread count at every call of ``module.name``."""
    seen, real = [], getattr(module, name)

    def wrapped(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, wrapped)
    return seen


def count_placements(monkeypatch) -> list[str]:
    """Record every Placement the code builds from options (``make``, ``for_workers``)."""
    built = []
    for name in ("make", "for_workers"):
        real = getattr(Placement, name)
        monkeypatch.setattr(Placement, name, classmethod(
            lambda cls, *a, _real=real, _name=name, **k: (built.append(_name), _real(*a, **k))[1]))
    return built


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """A few steps of the docs' example space (no latency units: a latency search times every subnet)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "flat.npz"
    np.savez(path, x=rng.standard_normal((300, 16)).astype(np.float32), y=rng.integers(0, 3, 300))
    cfg = TrainConfig(data=str(path), space="elastic_mlp", steps=4, batch_size=32, warmup_steps=1, calib_batches=1,
                      checkpoint_every=0, tensorboard=False, progress=False, device="cpu")
    return train(cfg, tmp_path_factory.mktemp("runs") / "mlp")


@pytest.mark.parametrize("threads", [1, 3])
def test_a_latency_search_times_every_subnet_with_the_search_threads(mlp_run, tmp_path, monkeypatch, threads):
    import supernet.evaluation.checkpoint as checkpoint
    import supernet.hardware.timers as timers
    clock, evaluations = spy(monkeypatch, timers, "timed"), spy(monkeypatch, checkpoint, "evaluate_arch")
    built = count_placements(monkeypatch)
    before = torch.get_num_threads()
    config = SearchConfig(objectives=("accuracy", "latency"), target="cpu", evaluations=6, initial=2, per_round=2, uncertain=1,
                          generations=2, population=8)
    result = search(mlp_run, config, tmp_path / "search", progress=False, tensorboard=False, calib_batches=1,
                    device="cpu", threads=threads)
    assert all("latency" in row for row in result.evaluations)
    assert clock and set(clock) == {threads}  # every timed subnet, at --threads (it was 2 whatever --threads said)
    assert evaluations and set(evaluations) == {threads}
    assert built == ["make"]  # one placement for the command, decided by the front door
    assert torch.get_num_threads() == before  # restored: the API leaves the process as it found it


def test_evaluate_computes_with_its_threads_and_restores_them(trained, monkeypatch):
    import supernet.api as api
    seen, before, threads = spy(monkeypatch, api, "evaluate_arch"), torch.get_num_threads(), other_than_now()
    built = count_placements(monkeypatch)
    rows = evaluate(trained, ["smallest", "largest"], splits=["val"], calib_batches=1, device="cpu", threads=threads)
    assert len(rows) == 2 and seen == [threads, threads] and built == ["make"]
    assert torch.get_num_threads() == before


def test_the_cli_passes_threads_to_the_api(trained, monkeypatch, capsys):
    import supernet.api as api
    from tests.support import run_main
    seen, threads = spy(monkeypatch, api, "evaluate_arch"), other_than_now()
    status, _ = run_main(["eval", trained, "--arch", "smallest", "--split", "val", "--calib-batches", "1",
                          "--device", "cpu", "--threads", threads], capsys)
    assert status in (0, None) and seen == [threads]


def test_threads_are_checked_once_with_the_placement():
    with pytest.raises(SupernetError, match="--threads must be >= 1 and <= 1024, got 0"):
        Placement.make("cpu", threads=0)
    with pytest.raises(SupernetError, match="--threads must be a whole number"):
        Placement.make("cpu", threads=1.5)
    assert Placement.make("cpu").cpu_threads is None  # torch's choice
    workers = Placement.for_workers(False, "bf16", threads=None)
    assert workers.cpu_threads == 1 and pickle.loads(pickle.dumps(workers)) == workers  # Ray workers: 1 each
    assert workers.bound("cuda").cpu_threads == 1


def test_torch_threads_sets_and_restores_even_on_error():
    before, threads = torch.get_num_threads(), other_than_now()
    with pytest.raises(RuntimeError):
        with torch_threads(threads):
            assert torch.get_num_threads() == threads
            raise RuntimeError
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with Placement.make("cpu", threads=threads).threads():
        assert torch.get_num_threads() == threads
    with CPU.threads():
        assert torch.get_num_threads() == before


def test_nothing_but_the_one_helper_sets_torch_threads():
    """``torch.set_num_threads`` is called only by :func:`supernet.core.placement.torch_threads` in the engine,
    its spaces and its predictors."""
    callers = []
    for folder in ("supernet", "search_spaces", "predictors"):
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "set_num_threads":
                    callers.append(str(path.relative_to(REPO)))
    assert sorted(set(callers)) == ["supernet/core/placement.py"]
    helper = ast.parse((REPO / "supernet/core/placement.py").read_text())
    owners = [f.name for f in ast.walk(helper) if isinstance(f, ast.FunctionDef)
              and any(isinstance(n, ast.Attribute) and n.attr == "set_num_threads" for n in ast.walk(f))]
    assert owners == ["torch_threads"]
