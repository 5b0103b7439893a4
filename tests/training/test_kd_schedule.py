"""The distillation schedule (``--kd KIND:F,...,KIND``): checked once, resolved per step by the
task, switched at the stated step in training, resumed exactly across the switch; and AlphaNet's
gradient value clipping (``--grad-clip-value``)."""
import json
import shutil

import pytest
import torch
from tests.support import step_losses, tiny_cfg

from supernet.api import resume_training, train
from supernet.core.errors import SupernetError
from supernet.core.placement import CPU
from supernet.core.task import check_kd, make_task, phase_starts
from supernet.training.trainer import Trainer
from supernet.training.train_config import with_space_defaults


def test_kd_values_and_schedules_are_checked_and_spelled_one_way():
    assert check_kd("kl") == "kl" and check_kd(" kl : 0.30 , alpha ") == "kl:0.3,alpha"
    assert check_kd("none:0.1,kl:0.5,alpha") == "none:0.1,kl:0.5,alpha"
    for bad in ("x", "", "kl:0.3", "kl,alpha", "kl:0,alpha", "kl:1,alpha", "kl:0.6,none:0.4,alpha",
                "kl:0.5,kl", "kl:abc,alpha", "alpha:nan,kl"):
        with pytest.raises(SupernetError, match="--kd must be"):
            check_kd(bad)
    with pytest.raises(SupernetError, match="--kd must be"):
        train(tiny_cfg("digits", kd="kl:2,alpha"), "unused-never-written")


def test_each_step_gets_its_phase_switching_at_the_rounded_fraction():
    task = make_task("classification", kd="none:0.25,kl:0.5,alpha")
    assert phase_starts(task.kd, 10) == [0, 3, 5]  # floor(2.5 + 0.5), floor(5 + 0.5)
    assert [task.at(s, 10).kd for s in range(10)] == ["none"] * 3 + ["kl"] * 2 + ["alpha"] * 5
    assert task.at(0, 10).labels_only and not task.at(3, 10).labels_only
    assert task.at(9, 10).label_smoothing == task.label_smoothing and task.at(9, 10).kind == task.kind
    plain = make_task("classification", kd="alpha")
    assert plain.at(0, 10) is plain
    with pytest.raises(ValueError, match="depends on the step"):
        task.distill(torch.zeros(2, 3), torch.zeros(2, 3))


@pytest.mark.slow
def test_training_switches_at_the_stated_step(npz_data, tmp_path):
    rows = step_losses(train(tiny_cfg(npz_data, kd="none:0.5,kl"), tmp_path / "warm"))  # 8 steps: switch at 4
    assert [("kd/mean_divergence" in r) for r in rows] == [False] * 4 + [True] * 4
    rows = step_losses(train(tiny_cfg(npz_data, kd="kl:0.5,none"), tmp_path / "cool"))
    assert [("kd/mean_divergence" in r) for r in rows] == [True] * 4 + [False] * 4
    same = step_losses(train(tiny_cfg(npz_data, kd="kl"), tmp_path / "kl"))
    for a, b in zip(rows[:4], same[:4]):  # before the switch: exactly the plain KL run
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7)


@pytest.mark.slow
def test_resume_is_exact_across_the_switch(npz_data, tmp_path):
    cfg = tiny_cfg(npz_data, kd="none:0.7,alpha")  # 8 steps: labels for steps 0-5, alpha from step 6
    full = train(cfg, tmp_path / "full")
    part = train(cfg, tmp_path / "part")
    shutil.rmtree(part / "checkpoints" / "step-0000008")  # killed after the step-4 checkpoint, before the switch
    lines = [line for line in open(part / "log.jsonl") if json.loads(line)["step"] < 4]
    (part / "log.jsonl").write_text("".join(lines))
    resume_training(part)
    a, b = step_losses(full), step_losses(part)
    assert [r["step"] for r in b] == list(range(8))
    assert [("kd/mean_divergence" in r) for r in b] == [False] * 6 + [True] * 2
    for ra, rb in zip(a, b):
        assert ra == pytest.approx(rb, rel=1e-6, abs=1e-7), ra["step"]


def test_grad_clip_value_bounds_every_gradient_element(tiny1d):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 20, generator=g), torch.randint(0, 10, (16,), generator=g)

    def update(clip_value):
        model = type(tiny1d)(tiny1d.config)
        model.load_state_dict(tiny1d.state_dict())
        cfg = with_space_defaults(tiny_cfg("unused", grad_clip=0.0, grad_clip_value=clip_value, weight_decay=0.0, warmup_steps=0))
        trainer = Trainer(model, make_task("classification"), cfg, CPU, 4)
        before = [p.detach().clone() for p in model.parameters()]
        trainer.step(x, y, 0)
        return max((p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before))
    # Nesterov SGD's first step moves each weight by lr (1 + momentum) g: at most that with |g| <= v (float32
    # differences of weights near 1 carry a rounding of about 1e-7, so 2 % above)
    cfg = tiny_cfg("unused")
    assert update(1e-4) <= cfg.lr * (1 + cfg.momentum) * 1e-4 * 1.02
    assert update(0.0) > 10 * cfg.lr * (1 + cfg.momentum) * 1e-4
