"""Bad input to ``supernet import ofa``: one line each (exit 2), nothing written."""
import pickle

import pytest
import torch

from supernet.cli.main import main as cli
from tests.support import ofa_stub

W10, W12 = "ofa_mbv3_d234_e346_k357_w1.0", "ofa_mbv3_d234_e346_k357_w1.2"


@pytest.fixture(scope="module")
def states():
    """OFA's own state dicts of w1.0 and w1.2 (random weights)."""
    return {net: ofa_stub.build_ofa_net(net).state_dict() for net in (W10, W12)}


def refused(capsys, tmp_path, weights, *extra, net=W10):
    """Run the import; assert one ``error:`` line, exit 2, no run folder and no temp folder; return the line."""
    out = tmp_path / "run"
    code = cli(["import", "ofa", "--net", net, "--weights", str(weights), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists() and not list(tmp_path.glob(".run.tmp-*"))
    return err


def save(tmp_path, data, name="ofa.pth"):
    torch.save(data, tmp_path / name)
    return tmp_path / name


def test_another_net_is_named(states, tmp_path, capsys):
    err = refused(capsys, tmp_path, save(tmp_path, {"state_dict": states[W12]}))
    assert f"looks like {W12}" in err and f"--net {W12}" in err


def test_truncated_file(states, tmp_path, capsys):
    whole = save(tmp_path, {"state_dict": states[W10]}).read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[: len(whole) // 2])
    assert "truncated or not a torch checkpoint" in refused(capsys, tmp_path, tmp_path / "cut.pth")


class Payload:
    """A pickled object whose loading would run code (here harmless: ``print``)."""

    def __reduce__(self):
        return print, ("this must never run",)


def test_pickle_that_needs_code_is_refused(states, tmp_path, capsys):
    path = save(tmp_path, {"state_dict": states[W10], "extra": Payload()})
    err = refused(capsys, tmp_path, path)
    assert "need code to load" in err and "weights_only" in err
    raw = tmp_path / "raw.pkl"  # a plain pickle, not a torch zip file
    raw.write_bytes(pickle.dumps(Payload()))
    assert "this must never run" not in refused(capsys, tmp_path, raw)


def test_missing_and_extra_keys(states, tmp_path, capsys):
    state = dict(states[W10])
    del state["blocks.5.conv.depth_conv.conv.7to5_matrix"]
    err = refused(capsys, tmp_path, save(tmp_path, {"state_dict": state}))
    assert "missing" in err and "blocks.5.conv.depth_conv.conv.7to5_matrix" in err
    state = {**states[W10], "blocks.3.conv.extra.weight": torch.zeros(3)}
    err = refused(capsys, tmp_path, save(tmp_path, {"state_dict": state}))
    assert "not part of" in err and "blocks.3.conv.extra.weight" in err


def test_wrong_shape_and_not_a_state_dict(states, tmp_path, capsys):
    state = {**states[W10], "classifier.linear.weight": torch.zeros(10, 1280)}
    assert "has shape (10, 1280)" in refused(capsys, tmp_path, save(tmp_path, {"state_dict": state}))
    assert "no state dict of tensors" in refused(capsys, tmp_path, save(tmp_path, {"epoch": 3}))
    assert "do not exist" in refused(capsys, tmp_path, tmp_path / "absent.pth")


def test_unsupported_resolution_and_unknown_net(states, tmp_path, capsys):
    path = save(tmp_path, {"state_dict": states[W10]})
    assert "not one OFA's supernets support" in refused(capsys, tmp_path, path, "--resolutions", "160,100")
    assert "not one OFA's supernets support" in refused(capsys, tmp_path, path, "--resolutions", "130")
    err = refused(capsys, tmp_path, path, net="ofa_mbv3_w9")
    assert W10 in err and "ofa_proxyless_d234_e346_k357_w1.3" in err


def test_old_key_spellings_and_no_step_counters_import(states, tmp_path, capsys):
    """OFA's own loader accepts ``mobile_inverted_conv`` and unnested BN names; so does the import.
    BN step counters (absent from files of older torch) are optional; the run evaluates its archs."""
    state = {k.replace(".conv.", ".mobile_inverted_conv.", 1).replace(".bn.bn.", ".bn."): v
             for k, v in states[W10].items() if not k.endswith("num_batches_tracked")}
    path = save(tmp_path, {"state_dict": state})
    out = tmp_path / "run"
    assert cli(["import", "ofa", "--net", W10, "--weights", str(path), "--out", str(out),
                "--resolutions", "160,224"]) == 0
    from supernet.io.checkpoint import load_checkpoint
    model, meta = load_checkpoint(out)
    assert model.config.resolutions == (160, 224) and meta["imported"]["sha256"]
    assert torch.equal(model.blocks[4].depthwise.weight, states[W10]["blocks.5.conv.depth_conv.conv.conv.weight"])
    again = cli(["import", "ofa", "--net", W10, "--weights", str(path), "--out", str(out)])
    assert again == 2 and "already exists" in capsys.readouterr().err


def test_unknown_source_and_help(tmp_path, capsys):
    import subprocess
    import sys
    assert cli(["import", "tensorflow", "--net", "x", "--weights", str(tmp_path / "f"), "--out", str(tmp_path / "r")]) == 2
    assert "no importer for 'tensorflow'" in capsys.readouterr().err and not (tmp_path / "r").exists()
    code = ("import sys\nfrom supernet.cli import main\ntry:\n    main(['import', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "examples:" in result.stdout and "supernet import ofa" in result.stdout, result.stderr


def test_ofa_picks_refused_in_one_line():
    from search_spaces.mobilenet.ofa_nets import OFA_NETS
    from search_spaces.mobilenet.space import MobileNetSpace
    from supernet.core.errors import SupernetError
    space = MobileNetSpace(OFA_NETS[W10])
    cases = {"ofa:nope": "unknown OFA pick 'nope'; the 24 of OFA's 50 picks that are archs of this space",
             "ofa:cpu_lat-10ms_top1-71.1_finetune-25": "a subnet of ofa_proxyless_d234_e346_k357_w1.3",
             "ofa:note10_lat-30ms_top1-78.4_finetune-75": f"a subnet of {W12}"}
    for name, expected in cases.items():
        with pytest.raises(SupernetError) as err:
            space.load_arch(name)
        assert expected in str(err.value) and "\n" not in str(err.value)
        assert "ofa:note10_lat-22ms_top1-76.6_finetune-25" in str(err.value)  # the picks that do fit
    w12 = MobileNetSpace(OFA_NETS[W12])
    with pytest.raises(SupernetError, match="resolution 260 px is not one of the space's"):
        w12.load_arch("ofa:note10_lat-64ms_top1-80.2_finetune-75")
    assert w12.load_arch("ofa:note10_lat-30ms_top1-78.4_finetune-75")["r"] == 224
