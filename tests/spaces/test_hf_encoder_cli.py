"""hf_encoder end to end through the CLI: train on labelled text (fixed pretrained teacher, and in place), export,
and a latency-budgeted search on a tiny BERT."""
import csv
import json

import pytest
import torch
from tests.support.hf_encoder import save_kind

from supernet.cli.main import main
from supernet.io.export import load_exported

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.slow]
WORDS = ["cat", "dog", "sun", "sea", "park", "roof", "lake", "mat"]


def run(*argv):
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("hfenc")
    folder = save_kind(root / "bert", "bert")
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(96):
        label = i % 3
        words = [WORDS[int(j)] for j in torch.randint(0, len(WORDS), (6,), generator=g)]
        words.insert(int(torch.randint(0, 6, (1,), generator=g)), ["cat", "sun", "lake"][label])
        rows.append((" ".join(words), ["a", "b", "c"][label]))
    data = root / "data.csv"
    with open(data, "w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    common = ["--space", "hf_encoder", "--space-option", f"model={folder}", "--space-option", "seq_len=12",
              "--data", f"text:{data}", "--steps", "3", "--batch-size", "8", "--optimizer", "adamw", "--lr", "1e-4",
              "--warmup-steps", "1", "--threads", "1", "--calib-batches", "1", "--no-tensorboard", "--no-progress"]
    assert run("train", *common, "--out", root / "run") == 0
    assert run("train", *common, "--space-option", "teacher=inplace", "--out", root / "inplace") == 0
    return root, folder


def logged_steps(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()
            if '"step"' in line and "loss/largest" in line]


def test_training_distils_from_the_pretrained_teacher_or_in_place(trained):
    root, _ = trained
    fixed, inplace = logged_steps(root / "run"), logged_steps(root / "inplace")
    assert len(fixed) == 3 and len(inplace) == 3
    # a fixed teacher: every arch (the largest too) distils, so its logged loss is a divergence, near 0 at step 0
    # (the largest arch IS the pretrained model before the first update); in place, the largest learns the labels
    assert fixed[0]["loss/largest"] < 1e-4 < inplace[0]["loss/largest"]
    config = json.loads((root / "run" / "config.json").read_text())
    assert config["space_config"]["teacher"] == "pretrained" and config["space_config"]["model_hash"]
    assert config["data"]["class_names"] == ["a", "b", "c"]


def test_an_untrained_classifier_as_teacher_is_logged_and_warned(trained):
    """The tiny BERT is random: its head knows none of the labels, and the fixed-teacher run says so (the
    warning is the same record, :func:`supernet.training.teacher.unfit_teacher_warning`); in place, no teacher."""
    root, _ = trained
    events = [json.loads(line) for line in (root / "run" / "log.jsonl").read_text().splitlines()]
    [check] = [e for e in events if e.get("event") == "teacher"]
    assert check["fit"] is False and check["accuracy"] <= check["majority"] + 0.02
    assert check["split"] == "train" and check["examples"] > 50  # 10 validation examples: too few to judge by
    assert not [line for line in (root / "inplace" / "log.jsonl").read_text().splitlines() if '"teacher"' in line]


def test_export_of_the_trained_run_loads_and_matches(trained):
    root, _ = trained
    out = root / "export"
    assert run("export", root / "run", "--arch", "smallest", "--out", out) == 0
    assert {"model.safetensors", "model.onnx", "hf", "arch.json", "config.json"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "config.json").read_text())
    assert meta["format"] == "hf-encoder" and meta["stock_loadable"] is False
    x = torch.randint(5, 60, (2, 12))
    import onnxruntime as ort
    with torch.no_grad():
        ours = load_exported(out)(x)
    onnx = ort.InferenceSession(str(out / "model.onnx")).run(None, {"input": x.numpy()})[0]
    assert abs(onnx - ours.numpy()).max() <= 1e-5


@pytest.mark.parametrize("target", ["cpu", "onnxruntime-cpu"])
def test_latency_table_and_budgeted_search(trained, target):
    root, _ = trained
    tables, out = root / f"latency-{target}", root / f"search-{target}"
    assert run("latency", "build", root / "run", "--target", target, "--threads", "1", "--archs", "5",
               "--warmup", "1", "--repeats", "3", "--rounds", "1", "--unit-rounds", "1", "--out", tables,
               "--no-progress") == 0
    table_file = next(tables.glob(f"{target}-*.json"))
    table = json.loads(table_file.read_text())
    assert len(table["units"]) == 1 + 4 * 4 and len(table["archs"]) == 5  # base + heads x widths
    assert run("search", root / "run", "--objectives", "accuracy,latency", "--max-latency-ms", "1000", "--target",
               target, "--latency-table", table_file, "--evaluations", "5", "--initial", "3", "--per-round", "2",
               "--uncertain", "1", "--out", out, "--threads", "1") == 0
    rows = list(csv.DictReader(open(out / "evaluations.csv")))
    assert len(rows) >= 3 and all(float(r["latency"]) > 0 for r in rows)
    assert (out / "pareto.json").exists() and "latency_table" in (out / "config.json").read_text()


def test_an_elastic_hidden_size_trains_exports_and_tables(trained):
    """--hidden-fractions 0.5,1: the run records the choice, the smallest arch exports at hidden 16 (ONNX equal to
    the static module), and the latency table holds every unit at both hidden sizes."""
    root, folder = trained
    data = next(root.glob("data.csv"))
    assert run("train", "--space", "hf_encoder", "--model", folder, "--hidden-fractions", "0.5,1", "--seq-len", "12",
               "--data", f"text:{data}", "--steps", "2", "--batch-size", "8", "--optimizer", "adamw", "--lr", "1e-4",
               "--warmup-steps", "1", "--threads", "1", "--calib-batches", "1", "--no-tensorboard", "--no-progress",
               "--out", root / "hidden") == 0
    config = json.loads((root / "hidden" / "config.json").read_text())
    assert config["space_config"]["hidden_fractions"] == [0.5, 1.0]
    out = root / "hidden-export"
    assert run("export", root / "hidden", "--arch", "smallest", "--out", out) == 0
    assert json.loads((out / "arch.json").read_text())["arch"]["hidden"] == 16
    x = torch.randint(5, 60, (2, 12))
    import onnxruntime as ort
    with torch.no_grad():
        ours = load_exported(out)(x)
    onnx = ort.InferenceSession(str(out / "model.onnx")).run(None, {"input": x.numpy()})[0]
    assert abs(onnx - ours.numpy()).max() <= 1e-5
    tables = root / "hidden-latency"
    assert run("latency", "build", root / "hidden", "--target", "cpu", "--threads", "1", "--archs", "3", "--warmup",
               "1", "--repeats", "3", "--rounds", "1", "--unit-rounds", "1", "--out", tables, "--no-progress") == 0
    table = json.loads(next(tables.glob("cpu-*.json")).read_text())
    assert len(table["units"]) == 2 * (1 + 4 * 4)
