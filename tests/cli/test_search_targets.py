"""``supernet search --targets``: documented in --help, bad budgets refused in one line before any work."""
from supernet.cli.main import main


def test_help_names_the_multi_target_options(capsys):
    try:
        main(["search", "--help"])
    except SystemExit:
        pass
    text = capsys.readouterr().out
    assert "--targets" in text and "TARGET=MS" in text and "targets/<name>/" in text


def test_a_budget_for_a_target_not_searched_is_one_line(capsys, tmp_path):
    code = main(["search", str(tmp_path / "nowhere"), "--targets", "cpu,onnxruntime-cpu", "--max-latency-ms",
                 "gpu=2", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not among --targets" in err[0]
    assert not (tmp_path / "s").exists()


def test_nsga2_is_refused_for_several_targets(capsys, tmp_path):
    code = main(["search", str(tmp_path), "--target", "cpu", "--target", "onnxruntime-cpu", "--strategy", "nsga2"])
    assert code == 2 and "predictor-guided or random" in capsys.readouterr().err
