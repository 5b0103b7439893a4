"""The CLI as a user meets it: one-line errors, non-zero exits, examples in --help."""
import json

import pytest
from tests.support import assert_one_line_error, cli



@pytest.mark.parametrize("command", ["train", "eval", "export", "spaces"])
def test_help_has_examples(command):
    result = cli(command, "--help")
    assert result.returncode == 0 and "examples:" in result.stdout and "supernet " + command in result.stdout


@pytest.mark.slow
def test_eval_reports_accuracy_flops_params(trained):  # noqa: F811
    result = cli("eval", trained, "--arch", "smallest", "--arch", "largest", "--split", "val")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["flops"] < rows[1]["flops"] and 0 <= rows[0]["val_accuracy"] <= 1


@pytest.mark.slow
def test_invalid_arch_json(trained, tmp_path):  # noqa: F811
    bad = tmp_path / "a.json"
    bad.write_text("{ks: [3]")
    assert_one_line_error(cli("eval", trained, "--arch", bad), "not valid JSON")
    assert_one_line_error(cli("eval", trained, "--arch", '{"ks": [3]}'), "missing field")
    assert_one_line_error(cli("eval", trained, "--arch", tmp_path / "none.json"), "cannot read arch file")


@pytest.mark.slow
def test_unknown_space_and_data(tmp_path):
    assert_one_line_error(cli("train", "--space", "nope", "--data", "mnist1d", "--out", tmp_path / "r"),
                          "unknown space 'nope'")
    assert_one_line_error(cli("train", "--data", "missing.npz", "--out", tmp_path / "r2"), "does not exist")


@pytest.mark.slow
def test_corrupted_and_wrong_shape_checkpoints(trained, tmp_path):  # noqa: F811
    import shutil

    from supernet.io.checkpoint import resolve_checkpoint
    ckpt = tmp_path / "ckpt"
    shutil.copytree(resolve_checkpoint(trained), ckpt)
    (ckpt / "weights.safetensors").write_bytes(b"garbage" * 10)
    assert_one_line_error(cli("eval", ckpt, "--arch", "smallest"), "corrupted")
    shutil.rmtree(ckpt)
    shutil.copytree(resolve_checkpoint(trained), ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["space_config"]["widths"] = [8, 24]
    (ckpt / "config.json").write_text(json.dumps(cfg))
    assert_one_line_error(cli("eval", ckpt, "--arch", "smallest"), "has shape")


@pytest.mark.slow
def test_missing_checkpoint_and_nothing_half_written(trained, tmp_path):  # noqa: F811
    assert_one_line_error(cli("export", tmp_path / "nothing", "--arch", "smallest", "--out", tmp_path / "e"),
                          "does not exist")
    assert_one_line_error(cli("export", trained, "--arch", '{"r": 1}', "--out", tmp_path / "e"), "arch")
    assert not (tmp_path / "e").exists() and not list(tmp_path.glob(".e*"))
