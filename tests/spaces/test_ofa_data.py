"""An imported OFA supernet on the user's data (issue 33, points 3 and 4): ``--data`` for ``eval``,
``search`` (FLOPs and an onnxruntime-cpu latency budget), ``export`` and ``finetune``; OFA's own picks
beside a search's (``--compare``); bad data and bad picks refused in one line, nothing written.

The run: OFA's ``ofa_mbv3_d234_e346_k357_w1.0`` with random weights (OFA's own package,
``tests/support/ofa_stub.py``), imported at 160 px only (the smallest size at which OFA published
picks of that net). The data: a fake ImageNet-layout folder, 1000 classes of one 8x8 image each
(ten classes hold two, so ten images are held out for validation)."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.support import ofa_stub, run_main

W10 = "ofa_mbv3_d234_e346_k357_w1.0"
PICK = "ofa:note10_lat-8ms_top1-71.4_finetune-25"  # a w1.0 pick at 160 px
OTHER_NET_PICK = "ofa:flops-389M_top1-79.1_finetune-75"  # a w1.2 pick
FAST = ["--calib-batches", "1", "--threads", "1", "--device", "cpu"]


def fake_imagenet(root, classes=1000, extra_every=100, seed=0):
    """``root/train/<class>/*.png``: one tiny image per class, two in every ``extra_every``-th."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / "train" / f"n{c:04d}"
        folder.mkdir(parents=True)
        for i in range(2 if c % extra_every == 0 else 1):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


CALIB_IMAGES = 16  # BN recalibration images per batch here (the engine's 256 at 160 px: ~9 s per evaluation)


@pytest.fixture(scope="module", autouse=True)
def small_calibration():
    """Every image folder here recalibrates BN on batches of ``CALIB_IMAGES``: this file checks how ``--data``
    flows through eval, search, export and finetune, not the statistics of 256 random images."""
    from supernet.data.imagefolder import ImageFolderData
    full = ImageFolderData.calibration_batches
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFolderData, "calibration_batches",
                      lambda self, n, batch_size, seed: full(self, n, min(batch_size, CALIB_IMAGES), seed))
        yield


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """``(tmp, run)``: the imported run."""
    tmp = tmp_path_factory.mktemp("ofa_data")
    ofa_stub.save_ofa_checkpoint(ofa_stub.build_ofa_net(W10), tmp / "w10.pth")
    run = tmp / "run"
    assert main(["import", "ofa", "--net", W10, "--weights", str(tmp / "w10.pth"), "--out", str(run),
                 "--resolutions", "160"]) == 0
    return tmp, run


@pytest.fixture(scope="module")
def ofa(imported):
    """``(tmp, run, data)``: the imported run and ``imagefolder:`` data of OFA's 1000 classes."""
    tmp, run = imported
    return tmp, run, "imagefolder:" + str(fake_imagenet(tmp / "imagenet"))


@pytest.fixture(scope="module")
def tables(ofa):
    """``{target: table file}``: latency tables of the imported run on this machine, for cpu and onnxruntime-cpu."""
    tmp, run, _ = ofa
    out = {}
    for target in ("cpu", "onnxruntime-cpu"):
        assert main(["latency", "build", run, "--target", target, "--threads", "1", "--archs", "5", "--warmup", "1",
                     "--repeats", "3", "--rounds", "1", "--unit-rounds", "1", "--out", tmp / "latency",
                     "--no-progress"]) == 0
        out[target] = next((tmp / "latency").glob(f"{target}-*.json"))
    return out


def main(argv):
    from supernet.cli.main import main as cli
    return cli([str(a) for a in argv])


def cli_json_lines(argv, capsys):
    assert main([str(a) for a in argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_eval_search_export_on_the_users_data(ofa, tables, capsys):
    import onnxruntime as ort
    import torch

    from supernet.io.checkpoint import load_checkpoint
    from supernet.io.export import load_exported
    tmp, run, data = ofa
    model, _ = load_checkpoint(run)
    pick = model.space.load_arch(PICK)
    rows = cli_json_lines(["eval", run, "--arch", PICK, "--arch", "smallest", "--data", data, "--split", "val", *FAST],
                          capsys)
    assert [r["arch"]["r"] for r in rows] == [160, 160] and rows[0]["arch"] == pick.to_dict()
    assert rows[0]["flops"] == model.flops(pick) and 0.0 <= rows[0]["val_accuracy"] <= 1.0

    # under FLOPs, OFA's picks that fit the budget listed beside the search's own
    budget = model.flops(pick) + 1
    search = tmp / "search-flops"
    assert main(["search", run, "--data", data, "--max-flops", str(budget), "--strategy", "random",
                 "--evaluations", "5", "--initial", "2", "--compare", "ofa:all", "--out", search,
                 "--no-progress", "--no-tensorboard", *FAST]) == 0
    out = capsys.readouterr().out
    compared = json.loads((search / "compare.json").read_text())
    names = [a["name"] for a in compared["anchors"]]
    fitting = [n for n in model.space.named_archs() if model.flops(model.space.load_arch(n)) <= budget]
    assert PICK in names and names == fitting and all(a["within_budget"] for a in compared["anchors"])
    assert all(f"compare  {n}" in out for n in names) and "compare  pick max-accuracy-under-budget" in out
    assert json.loads((search / "config.json").read_text())["source"]["data"] == data

    # under a latency budget on onnxruntime-cpu, from a table of this machine
    table = tables["onnxruntime-cpu"]
    capsys.readouterr()
    search = tmp / "search-latency"
    assert main(["search", run, "--data", data, "--max-latency-ms", "1000", "--target", "onnxruntime-cpu",
                 "--latency-table", table, "--strategy", "random", "--evaluations", "5", "--initial", "2",
                 "--compare", PICK, "--out", search, "--no-progress", "--no-tensorboard", *FAST]) == 0
    out = capsys.readouterr().out
    anchor = json.loads((search / "compare.json").read_text())["anchors"][0]
    assert anchor["name"] == PICK and anchor["latency"] > 0 and anchor["latency_measured_ms"] > 0
    assert f"compare  {PICK}" in out and "measured" in out.split(f"compare  {PICK}")[1]

    # the pick exported (BN recalibrated on the --data the search ran with), its ONNX in a fresh session
    export = tmp / "export"
    assert main(["export", "--from-search", search, "--out", export]) == 0
    arch_json = json.loads((export / "arch.json").read_text())
    assert arch_json["calibration_data"] == data
    net = load_exported(export).eval()
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = net(x).numpy()
    # random weights, BN recalibrated on random images: logits in the hundreds, so the float32 tolerance is relative
    assert got.shape == (2, 1000) and np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.slow
def test_finetune_an_imported_runs_subnet(ofa, capsys):
    """``finetune`` trains on the --data the export was recalibrated on (or its own --data)."""
    tmp, run, data = ofa
    export = tmp / "export-smallest"
    assert main(["export", run, "--arch", "smallest", "--data", data, "--out", export, "--no-onnx"]) == 0
    tuned = tmp / "tuned"
    assert main(["finetune", export, "--out", tuned, "--steps", "2", "--batch-size", "8", "--calib-batches", "1",
                 "--threads", "1", "--device", "cpu", "--checkpoint-every", "0", "--no-onnx"]) == 0
    record = json.loads((tuned / "finetune.json").read_text())
    assert record["config"]["data"] == data
    assert len([line for line in (tuned / "log.jsonl").read_text().splitlines() if '"step"' in line]) >= 2


# -- bad input: one line, nothing written ---------------------------------------------------
def refused(capsys, argv, pattern, out=None):
    status, err = run_main(argv, capsys)
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert pattern in err[0], err[0]
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))
    return err[0]


def test_data_with_other_classes_is_refused(imported, tmp_path, capsys):
    from tests.support import write_images
    _, run = imported
    write_images(tmp_path / "three" / "train", per_class=2)
    data = f"imagefolder:{tmp_path / 'three'}"
    line = refused(capsys, ["eval", run, "--arch", "smallest", "--data", data], "has 3 classes")
    assert "classifier has 1000" in line and "train --init" in line
    out = tmp_path / "search"
    refused(capsys, ["search", run, "--data", data, "--max-flops", "100M", "--out", out], "has 3 classes", out)
    out = tmp_path / "export"
    refused(capsys, ["export", run, "--arch", "smallest", "--data", data, "--out", out], "has 3 classes", out)


def test_missing_data_folder_and_no_data(imported, tmp_path, capsys):
    _, run = imported
    missing = f"imagefolder:{tmp_path / 'nowhere'}"
    refused(capsys, ["eval", run, "--arch", "smallest", "--data", missing], "does not exist")
    out = tmp_path / "search"
    refused(capsys, ["search", run, "--data", missing, "--out", out], "does not exist", out)
    out = tmp_path / "export"
    refused(capsys, ["export", run, "--arch", "smallest", "--out", out], "--data imagefolder:PATH", out)


def test_a_pick_of_another_net_is_refused(imported, tmp_path, capsys):
    from tests.support import write_images
    _, run = imported
    write_images(tmp_path / "three" / "train", per_class=2)  # never read: the picks are refused first
    data = f"imagefolder:{tmp_path / 'three'}"
    line = refused(capsys, ["eval", run, "--arch", OTHER_NET_PICK, "--data", data], "is not an arch of this space")
    assert "ofa_mbv3_d234_e346_k357_w1.2" in line
    out = tmp_path / "search"
    refused(capsys, ["search", run, "--data", data, "--max-flops", "100M", "--compare", f"{PICK},{OTHER_NET_PICK}",
                     "--out", out], "is not an arch of this space", out)
    refused(capsys, ["search", run, "--data", data, "--compare", "nope:all", "--out", out], "names no arch", out)


def test_a_search_without_data_is_refused_before_anything_is_written(imported, tmp_path, capsys):
    """Each evaluation used to fail on the missing data, then the search stopped on too many failures."""
    _, run = imported
    for targets in ([], ["--targets", "cpu,onnxruntime-cpu"]):
        out = tmp_path / f"search{len(targets)}"
        refused(capsys, ["search", run, "--max-flops", "100M", *targets, "--out", out], "and no data set to", out)


@pytest.mark.slow
def test_one_search_for_two_targets_on_the_users_data(ofa, tables, tmp_path):
    """``--targets`` takes ``--data`` as a single-target search does (and records it for --resume)."""
    _, run, data = ofa
    from supernet.api_targets import search_targets
    from supernet.nas.search_config import SearchConfig
    config = SearchConfig(objectives=("accuracy", "latency"), evaluations=5, initial=2, strategy="random")
    result = search_targets(run, ["cpu", "onnxruntime-cpu"], config, tmp_path / "search", budgets="1000",
                            latency_tables=tables, progress=False, tensorboard=False, calib_batches=1, device="cpu",
                            threads=1, measure=False, data=data)
    assert result.accuracy_evaluations == 5 and sorted(result.targets) == ["cpu", "onnxruntime-cpu"]
    assert all(res.picks.get("max-accuracy-under-budget") for res in result.targets.values())
    saved = json.loads((tmp_path / "search" / "config.json").read_text())
    assert saved["source"]["data"] == data
