"""One copy of each option: a config field holds its default, its check (a named range or its choices) and its
help; the CLI's flags are built from the fields; building a plain config imports no space."""
import argparse
import dataclasses
import subprocess
import sys

import pytest

from supernet.core.errors import SupernetError
from supernet.core.options import Range
from supernet.training.train_config import ENGINE_DEFAULTS, FinetuneConfig, TrainConfig, with_space_defaults


def test_building_a_train_config_imports_no_space_and_no_registry():
    code = ("import sys\nfrom supernet.training.train_config import TrainConfig\ncfg = TrainConfig(space='llm_lora')\n"
            "assert cfg.label_smoothing is None, cfg.label_smoothing\n"
            "bad = [m for m in sys.modules if m.startswith(('search_spaces', 'supernet.core.registry', 'torch'))]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_space_defaults_fill_in_where_the_space_is_resolved():
    from supernet.core.registry import get_space
    from supernet.training.setup import resolved_config
    llm = get_space("llm_lora").train_defaults
    assert llm and llm["label_smoothing"] != ENGINE_DEFAULTS["label_smoothing"]
    cfg = resolved_config(TrainConfig(space="llm_lora"))
    assert all(getattr(cfg, k) == llm.get(k, v) for k, v in ENGINE_DEFAULTS.items())
    assert resolved_config(TrainConfig(space="llm_lora", label_smoothing=0.2)).label_smoothing == 0.2  # given: kept
    assert with_space_defaults(TrainConfig()).num_random == ENGINE_DEFAULTS["num_random"]  # no space defaults
    with pytest.raises(SupernetError, match="unknown space|not a registered|no space"):
        resolved_config(TrainConfig(space="no_such_space"))


@pytest.mark.parametrize("cls", [TrainConfig, FinetuneConfig])
def test_every_option_carries_its_help_and_a_named_range(cls):
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f.name
        assert not isinstance(f.metadata.get("range"), tuple), f.name
        if "range" in f.metadata:
            assert isinstance(f.metadata["range"], Range), f.name


def _actions(add) -> dict:
    from supernet.cli.common import Parser
    parser = Parser(prog="supernet")
    add(parser)
    return {a.dest: a for a in parser._actions}


@pytest.mark.parametrize("command, cls", [("train", TrainConfig), ("finetune", FinetuneConfig)])
def test_the_cli_flags_are_built_from_the_fields(command, cls):
    import importlib
    module = importlib.import_module(f"supernet.cli.{command}")
    assert not hasattr(module, "TRAIN_HELP")
    actions = _actions(module.add)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        action = actions[f.name]
        assert action.help.startswith(f.metadata["help"].replace("%", "%%")), f.name
        assert action.default == f.default, f.name
        if str(f.type) == "bool":
            assert isinstance(action, argparse.BooleanOptionalAction), f.name


def test_a_range_names_the_flag_and_its_ends():
    with pytest.raises(SupernetError, match=r"^--lr must be > 0 and <= 10, got 0$"):
        TrainConfig(lr=0).check()
    with pytest.raises(SupernetError, match=r"^--val-fraction must be between 0 and 1 \(exclusive\), got 1$"):
        TrainConfig(val_fraction=1).check()
    with pytest.raises(SupernetError, match=r"^--batch-size must be a whole number, got 2.5$"):
        TrainConfig(batch_size=2.5).check()
    with pytest.raises(SupernetError, match=r"^--optimizer must be one of \['sgd', 'adamw'\], got 'adam'$"):
        TrainConfig(optimizer="adam").check()
    with pytest.raises(SupernetError, match=r"^--steps must be >= 1 and <= 1000000000, got 0$"):
        FinetuneConfig(steps=0).check()


def test_a_space_option_declared_with_the_old_positional_range_is_still_checked():
    from dataclasses import dataclass, field

    from supernet.core.options import SpaceOptions

    @dataclass(frozen=True)
    class Old(SpaceOptions):
        size: int = field(default=8, metadata={"help": "a size", "range": (1, True, 64, True, True)})
    assert Old.from_dict({"size": 64}).size == 64
    with pytest.raises(SupernetError, match=r"^--size must be >= 1 and <= 64, got 65$"):
        Old.from_dict({"size": 65})
