"""hf_encoder's refusals: each one line (SupernetError; the CLI prints it, exit 2), nothing written."""
import csv
import shutil

import pytest
from tests.support.hf_encoder import save_kind

from search_spaces.hf_encoder.config import with_model
from supernet.cli.main import main
from supernet.core.errors import SupernetError
from supernet.core.registry import build_supernet, space_config

pytestmark = pytest.mark.filterwarnings("ignore")


def over(folder, **fields):
    return build_supernet("hf_encoder", with_model(space_config("hf_encoder", "default"), str(folder), **fields))


def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_a_model_kind_not_handled_names_the_handled_ones(tmp_path):
    from transformers import BertConfig, BertForMaskedLM
    from search_spaces.hf_encoder.testing import train_tokenizer
    folder = tmp_path / "mlm"
    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(folder)
    train_tokenizer(["a b"], 40).save_pretrained(folder)
    with pytest.raises(SupernetError) as exc:
        over(folder)
    text = one_line(exc)
    assert "BertForMaskedLM" in text and "BertForSequenceClassification" in text and "ViTForImageClassification" in text


def test_a_checkpoint_without_the_classifier(tmp_path):
    from safetensors.torch import load_file, save_file
    folder = save_kind(tmp_path / "b", "bert")
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("classifier.")}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(SupernetError) as exc:
        over(folder)
    assert "no trained classifier" in one_line(exc)


@pytest.mark.parametrize("kind,files", [("bert", ["tokenizer.json", "tokenizer_config.json"]),
                                        ("vit", ["preprocessor_config.json"])])
def test_tokenizer_or_processor_missing(tmp_path, kind, files):
    folder = save_kind(tmp_path / kind, kind)
    for name in files:
        (folder / name).unlink()
    with pytest.raises(SupernetError) as exc:
        over(folder)
    assert ("tokenizer" if kind == "bert" else "image processor") in one_line(exc)


@pytest.mark.parametrize("kind,name", [("bert", "tokenizer.json"), ("vit", "preprocessor_config.json")])
def test_tokenizer_or_processor_changed_since_training(tmp_path, kind, name):
    folder = save_kind(tmp_path / kind, kind)
    cfg = over(folder).config  # as trained: its identity hash recorded
    assert cfg.model_hash
    path = folder / name
    path.write_text(path.read_text().replace('"', '"', 1) + " ")
    with pytest.raises(SupernetError) as exc:
        build_supernet("hf_encoder", cfg)
    assert "changed since this supernet was trained" in one_line(exc)


def test_image_size_off_the_patch_grid(tmp_path):
    from search_spaces.hf_encoder import fit_data
    from search_spaces.hf_encoder.options import HfEncoderOptions
    from supernet.core.data_info import DataInfo
    folder = save_kind(tmp_path / "v", "vit")
    info = DataInfo("imgs", (3, 16, 16), num_classes=3)
    with pytest.raises(SupernetError) as exc:
        fit_data(space_config("hf_encoder", "default"), info, HfEncoderOptions(model=str(folder), image_size=18))
    assert "not a multiple of the model's patch size (4)" in one_line(exc)
    fitted = fit_data(space_config("hf_encoder", "default"), info, HfEncoderOptions(model=str(folder), image_size=20))
    assert fitted.interpolate and fitted.image_size == 20


def write_csv(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def run_main(argv, capsys):
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err.strip().splitlines()


def test_labels_outside_the_heads_classes_refused_by_the_cli(tmp_path, capsys):
    folder = save_kind(tmp_path / "b", "bert")  # 3 classes
    data = write_csv(tmp_path / "d.csv", [(f"the cat sat {i}", i % 5) for i in range(40)])
    out = tmp_path / "run"
    status, err = run_main(["train", "--space", "hf_encoder", "--space-option", f"model={folder}", "--space-option",
                            "seq_len=8", "--data", f"text:{data}", "--steps", "1", "--out", out, "--threads", "1"],
                           capsys)
    assert status == 2 and len(err) == 1 and "has 5 classes but the model's classifier has 3" in err[0], err
    assert not out.exists()


def test_image_model_on_text_data_refused(tmp_path, capsys):
    folder = save_kind(tmp_path / "v", "vit")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(save_kind(tmp_path / "b", "bert") / name, folder / name)
    data = write_csv(tmp_path / "d.csv", [(f"the cat sat {i}", i % 3) for i in range(40)])
    out = tmp_path / "run"
    status, err = run_main(["train", "--space", "hf_encoder", "--space-option", f"model={folder}", "--data",
                            f"text:{data}", "--steps", "1", "--out", out, "--threads", "1"], capsys)
    assert status == 2 and len(err) == 1 and "image classifier" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("value", ["0,1", "half", "0.5,1.5", ""])
def test_hidden_fractions_that_are_not_fractions_refused(tmp_path, capsys, value):
    folder = save_kind(tmp_path / "b", "bert")
    data = write_csv(tmp_path / "d.csv", [(f"the cat sat {i}", i % 3) for i in range(40)])
    out = tmp_path / "run"
    capsys.readouterr()  # the model folder's own output
    status, err = run_main(["train", "--space", "hf_encoder", "--model", folder, "--hidden-fractions", value,
                            "--data", f"text:{data}", "--steps", "1", "--out", out, "--threads", "1"], capsys)
    assert status == 2 and len(err) == 1 and "--hidden-fractions takes fractions in (0, 1]" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("field,value", [("image_size", [16, 24]), ("patch_size", [4, 8])])
def test_a_non_square_vit_refused_at_load(tmp_path, field, value):
    """transformers interpolates only square position grids and the supernet takes square images: refused in one
    line naming the field, not deep in the model's forward; a square pair is read as its side."""
    import json
    folder = save_kind(tmp_path / "v", "vit")
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, field: value}))
    with pytest.raises(SupernetError) as exc:
        over(folder)
    assert field in one_line(exc) and "square" in str(exc.value)
    (folder / "config.json").write_text(json.dumps({**raw, field: [value[0], value[0]]}))
    assert getattr(over(folder).config, "model_image_size" if field == "image_size" else field) == value[0]
