"""The seams: space contract, tasks over the last axis, device and precision, import rules."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.support import step_losses, tiny_cfg

from supernet.api import resume_training, train
from supernet.core.contract_check import contract_problems
from supernet.core.errors import SupernetError
from supernet.core.losses import adaptive_alpha_divergence
from supernet.core.placement import Placement, resolve_device
from supernet.core.registry import _SPACES, get_space, register_space, space_names
from supernet.core.task import ClassificationTask, LanguageModelTask, make_task
from supernet.training.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def every_space_variant():
    return [(n, v) for n in space_names() for v in get_space(n).variants if v.startswith("tiny")
            or v == get_space(n).default_variant]


@pytest.mark.slow
@pytest.mark.parametrize("name,variant", every_space_variant())
def test_every_registered_space_meets_the_contract(name, variant):
    assert contract_problems(name, variant) == []


def test_contract_names_what_a_broken_space_lacks():
    entry = get_space("mobilenet")

    class NoExample(type(entry.build_space(entry.variants["tiny"]))):
        example_input = None

    def build(cfg):
        net = entry.build_supernet(cfg)
        net.space = NoExample(cfg)
        return net

    register_space("broken_test_space", {"tiny": entry.variants["tiny"]}, config_cls=entry.config_cls,
                   build_space=NoExample, build_supernet=build, build_static=entry.build_static,
                   default_variant="tiny", task="translation")
    try:
        problems = contract_problems("broken_test_space", "tiny")
    finally:
        _SPACES.pop("broken_test_space")
    assert "space: space lacks example_input()" in problems and "task: unknown task kind 'translation'" in problems


def test_language_model_distillation_runs_per_token_over_the_last_axis():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(3, 5, 11, generator=g), torch.randn(3, 5, 11, generator=g)
    task = make_task("language_model", kd="alpha")
    loss, divergence = task.distill(student, teacher)
    per_row = adaptive_alpha_divergence(student.reshape(15, 11), teacher.reshape(15, 11))
    assert torch.allclose(loss, per_row[0]) and torch.allclose(divergence, per_row[1])
    targets = torch.randint(0, 11, (3, 5), generator=g)
    targets[0, :2] = -100
    total, count = task.score_terms(student, targets)
    assert count == 13
    assert total / count == pytest.approx(task.loss(student, targets).item(), rel=1e-5)
    assert isinstance(task, LanguageModelTask) and not task.higher_is_better


def test_divergence_is_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(1)
    student = torch.randn(8, 10, generator=g).requires_grad_()
    teacher = torch.randn(8, 10, generator=g)
    task = ClassificationTask(label_smoothing=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, divergence = task.distill(student.bfloat16(), teacher.bfloat16())
        ce = task.loss(student.bfloat16(), torch.arange(8))
    assert loss.dtype == divergence.dtype == ce.dtype == torch.float32
    exact = task.distill(student.bfloat16().float(), teacher.bfloat16().float())[1]
    assert divergence.item() == pytest.approx(exact.item(), rel=1e-6)


def test_device_errors_are_one_line():
    with pytest.raises(SupernetError, match="--device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SupernetError, match="sees none"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(SupernetError, match="--precision must be one of"):
        Placement.make("cpu", "fp8")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_training_resumes_exactly_on_cpu(npz_data, tmp_path, precision):
    kw = dict(device="cpu", precision=precision)
    full = train(tiny_cfg(npz_data, **kw), tmp_path / "full")
    part = train(tiny_cfg(npz_data, steps=8, **kw), tmp_path / "part")
    import shutil
    shutil.rmtree(part / "checkpoints" / "step-0000008")
    resume_training(part)
    a, b = step_losses(full), step_losses(part)
    assert [r["step"] for r in b] == list(range(8))  # resume truncated the log: no step twice
    for ra, rb in zip(a, b):
        for key in ra:
            assert ra[key] == pytest.approx(rb[key], rel=1e-6, abs=1e-7), (ra["step"], key)
    assert all(np.isfinite(r["loss/largest"]) for r in b)


@pytest.mark.slow
def test_checkpoint_of_one_precision_loads_and_evaluates_in_another(npz_data, tmp_path):
    from safetensors.torch import load_file

    from supernet.api import evaluate
    from supernet.io.checkpoint import resolve_checkpoint
    run = train(tiny_cfg(npz_data, steps=4, device="cpu", precision="bf16"), tmp_path / "bf16")
    weights = load_file(str(resolve_checkpoint(run) / "weights.safetensors"))
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}
    fp32 = evaluate(run, ["largest"], splits=["val"], calib_batches=1, device="cpu", precision="fp32")[0]
    bf16 = evaluate(run, ["largest"], splits=["val"], calib_batches=1, device="cpu", precision="bf16")[0]
    assert 0 <= fp32["val_accuracy"] <= 1 and abs(fp32["val_accuracy"] - bf16["val_accuracy"]) <= 0.1


def test_training_options_are_checked_before_anything_is_written(tmp_path):
    for bad in ({"steps": -5}, {"lr": float("nan")}, {"calib_batches": 0}, {"num_random": -1},
                {"threads": -1}, {"batch_size": 10**30 + 0.5}, {"momentum": 1.0}, {"precision": "fp8"}):
        with pytest.raises(SupernetError, match="--"):
            train(TrainConfig(**bad), tmp_path / "never")
        assert not (tmp_path / "never").exists()


def test_front_door_exports_everything_readme_imports():
    import supernet
    text = (REPO / "README.md").read_text()
    for name in ("TrainConfig", "train", "evaluate", "search", "export", "load_exported", "SearchConfig",
                 "run_search", "build_latency", "space_names", "build_supernet", "space_config"):
        assert name in supernet.__all__ and getattr(supernet, name) is not None
    assert "from supernet import" in text
    json.dumps(supernet.__all__)


@pytest.mark.slow
def test_image_folder_runs_through_train_eval_search_and_export(tmp_path):
    from tests.support import write_images

    from supernet import SearchConfig, evaluate, export, load_exported, search
    for split, n in (("train", 12), ("val", 3)):
        write_images(tmp_path / "img" / split, "RGB", per_class=n, size=(18, 14))
    cfg = TrainConfig(data=f"imagefolder:{tmp_path / 'img'}", variant="tiny2d", steps=3, batch_size=8,
                      warmup_steps=1, calib_batches=1, data_workers=0, device="cpu", tensorboard=False,
                      progress=False)
    run = train(cfg, tmp_path / "run")
    meta = json.loads((run / "config.json").read_text())
    assert meta["image_size"] == 16 and meta["data"]["test_source"].startswith("same as val")
    rows = evaluate(run, ["largest", "smallest"], splits=["val", "test"], calib_batches=1, device="cpu")
    assert all(0 <= r["val_accuracy"] <= 1 and r["val_accuracy"] == r["test_accuracy"] for r in rows)
    result = search(run, SearchConfig(evaluations=6, initial=2), tmp_path / "s", progress=False, tensorboard=False,
                    calib_batches=1, device="cpu")
    assert len(result.evaluations) == 6
    out = export(run, "smallest", tmp_path / "e")
    net = load_exported(out)
    assert net(torch.zeros(2, 3, 12, 12)).shape == (2, 3)
    with pytest.raises(SupernetError, match="resize inputs"):
        net(torch.zeros(2, 3, 16, 16))


def test_an_interrupt_during_step_bookkeeping_waits_for_it_to_finish():
    import os
    import signal

    from supernet.training.trainer import deferred_interrupts
    finished, before = [], signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append("logged")
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("checkpointed")
    assert finished == ["logged", "checkpointed"]
    assert signal.getsignal(signal.SIGINT) == before  # restored, whatever it was
