import json

import numpy as np
import pytest
import torch

from supernet.api import resume_training, train
from supernet.core.errors import SupernetError
from supernet.io.checkpoint import load_checkpoint, resolve_checkpoint
from supernet.training.sampling import step_archs
from supernet.training.trainer import lr_factor
from tests.support import step_losses, tiny_cfg



@pytest.mark.slow
def test_sandwich_run_writes_checkpoint_logs_and_learns(npz_data, tmp_path):
    run = train(tiny_cfg(npz_data, steps=30, lr=0.1), tmp_path / "run")
    ckpt = resolve_checkpoint(run)
    assert ckpt.name == "step-0000030"
    assert {p.name for p in ckpt.iterdir()} == {"weights.safetensors", "config.json", "trainer.pt"}
    rows = step_losses(run)
    assert {"loss/largest", "loss/smallest", "loss/random1", "loss/random2", "kd/mean_divergence", "lr"} <= set(rows[0])
    first, last = np.mean([r["loss/largest"] for r in rows[:5]]), np.mean([r["loss/largest"] for r in rows[-5:]])
    assert last < first
    model, meta = load_checkpoint(run)
    assert meta["step"] == 30 and meta["variant"] == "tiny"


@pytest.mark.slow
def test_resume_continues_exactly(npz_data, tmp_path):
    full = train(tiny_cfg(npz_data), tmp_path / "full")
    part = train(tiny_cfg(npz_data, steps=8), tmp_path / "part")
    # simulate a crash after step 4: keep only the step-4 checkpoint and its log lines
    import shutil
    shutil.rmtree(part / "checkpoints" / "step-0000008")
    lines = [l for l in open(part / "log.jsonl") if json.loads(l)["step"] < 4]
    (part / "log.jsonl").write_text("".join(lines))
    resume_training(part)
    a, b = step_losses(full), step_losses(part)
    assert [r["step"] for r in b] == list(range(8))
    for ra, rb in zip(a, b):
        for key in ra:
            assert ra[key] == pytest.approx(rb[key], rel=1e-6, abs=1e-7), (ra["step"], key)
    wa, _ = load_checkpoint(full)
    wb, _ = load_checkpoint(part)
    for (n, p), (_, q) in zip(wa.state_dict().items(), wb.state_dict().items()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_uniform_sampling_trains_one_arch_per_step_without_distillation(npz_data, tmp_path):
    run = train(tiny_cfg(npz_data, sampling="uniform", steps=4), tmp_path / "spos")
    rows = step_losses(run)
    assert all(set(k for k in r if k.startswith(("loss/", "kd/"))) == {"loss/uniform"} for r in rows)


def test_step_archs_are_seeded_by_seed_and_step(tiny1d):
    space = tiny1d.space
    a = step_archs(space, "sandwich", 2, seed=1, step=5)
    assert a == step_archs(space, "sandwich", 2, seed=1, step=5)
    assert a[0] == space.largest() and a[1] == space.smallest()
    assert a[2:] != step_archs(space, "sandwich", 2, seed=1, step=6)[2:]


def test_nan_guard_names_step_and_arch(npz_data, tmp_path, monkeypatch):
    from supernet.core.task import ClassificationTask
    label_loss = ClassificationTask.loss
    monkeypatch.setattr(ClassificationTask, "loss", lambda self, out, y: label_loss(self, out, y) * float("nan"))
    with pytest.raises(SupernetError, match=r"not finite at step 0 for arch \{"):
        train(tiny_cfg(npz_data), tmp_path / "nan")


def test_existing_run_folder_is_not_overwritten(npz_data, tmp_path):
    train(tiny_cfg(npz_data, steps=2), tmp_path / "r")
    with pytest.raises(SupernetError, match="already exists"):
        train(tiny_cfg(npz_data, steps=2), tmp_path / "r")


def test_lr_schedule_warms_up_then_decays_to_zero():
    values = [lr_factor(s, 10, 100) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:])) and values[-1] < 0.001


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2])
def test_val_fraction_outside_zero_one_is_refused(npz_data, fraction):
    with pytest.raises(SupernetError, match="--val-fraction must be between 0 and 1"):
        tiny_cfg(npz_data, val_fraction=fraction).check()
