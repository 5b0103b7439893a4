"""The worked example space of docs/ (an elastic MLP over flat features) through every command, and the
rules of the space contract that it shows: the checker flags a space that breaks each of them."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tests.support import EXAMPLE_SPACE

from supernet import FinetuneConfig, SearchConfig, SearchSpace, SupernetError, TrainConfig
from supernet.api import evaluate, export, finetune, search, train
from supernet.core.contract import hook
from supernet.core.contract_check import contract_problems
from supernet.core.registry import _SPACES, get_space, register_space
from supernet.io.export import load_exported

REPO = EXAMPLE_SPACE.parents[1]


@pytest.fixture(scope="module")
def digits64(tmp_path_factory):
    """scikit-learn's 8x8 digits as flat features: x (1797, 64), y (1797,)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits64.npz"
    np.savez(path, x=(d.data / 16.0).astype(np.float32), y=d.target)
    return str(path)


def mlp_cfg(data, **kw):
    return TrainConfig(**{**dict(data=data, space="elastic_mlp", steps=40, batch_size=64, optimizer="adamw", lr=0.01,
                                 warmup_steps=2,
                                 calib_batches=1, checkpoint_every=20, tensorboard=False, progress=False,
                                 device="cpu", seed=0), **kw})


@pytest.mark.slow
def test_flat_features_go_through_train_eval_search_export_and_finetune(digits64, tmp_path):
    run = train(mlp_cfg(digits64), tmp_path / "run")
    meta = json.loads((run / "config.json").read_text())
    assert meta["variant"] == "digits" and meta["space_config"]["in_features"] == 64
    assert meta["data"]["input_shape"] == [64] and meta["space_config"]["num_classes"] == 10
    rows = evaluate(run, ["largest", "smallest"], splits=["val"], calib_batches=1, device="cpu")
    assert all(r["val_accuracy"] > 0.5 for r in rows)  # 10 classes: chance is 0.1
    result = search(run, SearchConfig(evaluations=8, initial=3), tmp_path / "search", progress=False,
                    tensorboard=False, calib_batches=1, device="cpu")
    assert len(result.evaluations) == 8 and result.front
    out = export(run, "largest", tmp_path / "export")
    arch_json = json.loads((out / "arch.json").read_text())
    assert arch_json["input_shape"] == [1, 64] and arch_json["preprocessing"] == "none"
    net = load_exported(out)
    x = torch.from_numpy(np.load(digits64)["x"][:5])
    assert net(x).shape == (5, 10)
    import onnxruntime as ort
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert session.get_inputs()[0].shape[1:] == [64] and np.allclose(got, net(x).detach().numpy(), atol=1e-5)
    tuned = finetune(out, tmp_path / "tuned", config=FinetuneConfig(steps=4, calib_batches=1, device="cpu"))
    assert load_exported(tuned)(x).shape == (5, 10)


def test_flops_and_params_are_counted_on_the_extracted_subnet(digits64):
    from supernet.core.registry import build_supernet, space_config
    model = build_supernet("elastic_mlp", space_config("elastic_mlp", "digits"))
    arch = model.space.make({"depth": 2, "width": [128, 64, 256]})
    assert not hasattr(model, "flops") and hook(model, "flops")(arch) == 64 * 128 + 128 * 64 + 64 * 10
    assert hook(model, "params")(arch) == (64 + 1) * 128 + (128 + 1) * 64 + (64 + 1) * 10


def test_the_space_chooses_its_variant_and_fits_its_config_to_the_data(digits64, tmp_path):
    """A space's variant named like one of mobilenet's is not chosen by name: the engine names no variant."""
    entry = get_space("elastic_mlp")
    variants = {**entry.variants, "mnist1d": dataclasses.replace(entry.variants["digits"], in_features=40)}
    register_space("mlp_with_mnist1d", variants, config_cls=entry.config_cls, build_space=entry.build_space,
                   build_supernet=entry.build_supernet, build_static=entry.build_static, default_variant="digits",
                   task="classification")  # no fit_data: the data must fit the variant as it is
    try:
        run = train(mlp_cfg(digits64, space="mlp_with_mnist1d", steps=2), tmp_path / "ok")
        assert json.loads((run / "config.json").read_text())["variant"] == "digits"
        with pytest.raises(SupernetError, match="does not fit variant 'mnist1d' of space 'mlp_with_mnist1d'"):
            train(mlp_cfg(digits64, space="mlp_with_mnist1d", variant="mnist1d", steps=2), tmp_path / "bad")
        assert not (tmp_path / "bad").exists()
    finally:
        _SPACES.pop("mlp_with_mnist1d")
    with pytest.raises(SupernetError, match="takes flat features"):
        train(mlp_cfg("digits", steps=2), tmp_path / "images")  # (N, 1, 8, 8) images: fit_data says what to do


def test_a_shared_depth_fills_the_layers_it_turns_on(digits64, tmp_path):
    from supernet.training.sampling import step_archs
    space = get_space("elastic_mlp").build_space(get_space("elastic_mlp").variants["digits"])
    for step in range(20):
        archs = step_archs(space, "sandwich", 3, 0, step, share=("depth",))
        assert len({a["depth"] for a in archs}) == 1 and all(space.make(a.to_dict()) == a for a in archs)
        assert archs[0]["width"][:archs[0]["depth"]] == (256,) * archs[0]["depth"]  # the largest stays largest
    run = train(mlp_cfg(digits64, steps=4, share_dims="depth"), tmp_path / "shared")
    assert (run / "checkpoints").is_dir()


@pytest.mark.slow
def test_a_space_file_registers_through_supernet_spaces_alone(tmp_path):
    env = {**os.environ, "SUPERNET_SPACES": str(EXAMPLE_SPACE)}
    listing = subprocess.run([sys.executable, "-m", "supernet.cli", "spaces"], env=env, capture_output=True,
                             text=True, cwd=tmp_path)
    assert listing.returncode == 0 and "elastic_mlp  digits" in listing.stdout
    env["SUPERNET_SPACES"] = "my_missing_space"
    bad = subprocess.run([sys.executable, "-m", "supernet.cli", "spaces"], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "PYTHONPATH" in bad.stderr and ".py file" in bad.stderr


# -- the checker flags a space that breaks a rule -------------------------------------------------------------
def broken(name, **changes):
    """Register a copy of the example space with ``changes`` to its supernet class; its contract problems."""
    entry = get_space("elastic_mlp")
    base = entry.build_supernet
    config_cls = changes.pop("config_cls", entry.config_cls)
    variant = changes.pop("variant", entry.variants["tiny"])
    supernet_cls = type(name, (base,), changes)
    register_space(name, {"tiny": variant}, config_cls=config_cls, build_space=entry.build_space,
                   build_supernet=supernet_cls, build_static=entry.build_static, default_variant="tiny")
    try:
        return contract_problems(name, "tiny")
    finally:
        _SPACES.pop(name)


def test_the_checker_passes_the_example_and_flags_each_broken_rule():
    assert contract_problems("elastic_mlp", "tiny") == []
    reshaping = broken("reshaping", prepare_input=lambda self, x, arch: x.reshape(len(x), 1, -1))
    assert any(p.startswith("prepare-input: prepare_input turns (2, 12) into (2, 1, 12)") for p in reshaping), reshaping
    wrong_static = broken("wrong_static", extract=lambda self, arch: torch.nn.Sequential(
        torch.nn.Linear(12, 3)))
    assert any(p.startswith("static-build: build_static and extract have different state-dict keys")
               for p in wrong_static), wrong_static
    drifting = broken("drifting", forward=lambda self, x, arch: get_space("elastic_mlp").build_supernet.forward(
        self, x, arch) + 1.0)
    assert "extract: extract(smallest) and forward disagree on the same input" in drifting, drifting
    not_a_hook = broken("not_a_hook", flops=5)
    assert "hooks: optional hook flops is not callable" in not_a_hook

    class PlainConfig:  # neither a dataclass nor to_dict / from_dict
        def __init__(self):
            self.in_features, self.num_classes, self.widths, self.max_depth = 12, 3, (8, 16), 2

    plain = broken("plain_config", config_cls=PlainConfig, variant=PlainConfig())
    assert any(p.startswith("config: config must be a dataclass") for p in plain), plain


def test_the_checker_lists_a_state_dict_mismatch_inside_extract_instead_of_raising_it():
    """extract loads the slices into the static build: keys that disagree raise there, and are listed."""
    def extract(self, arch):
        net = get_space("elastic_mlp").build_supernet.extract(self, arch)
        renamed = {f"layer.{k}": v for k, v in net.state_dict().items()}
        net.load_state_dict(renamed)  # the space's own error: unexpected / missing keys
        return net
    problems = broken("renaming", extract=extract)
    assert any(p.startswith("static-build: build_static(smallest) / extract(smallest) raise RuntimeError")
               for p in problems), problems


def test_the_checker_flags_a_wrong_flops_or_params_formula():
    base = get_space("elastic_mlp").build_supernet
    counted = lambda self, arch: hook(base(self.config), "flops")(arch)  # noqa: E731
    assert broken("right_flops", flops=counted) == []
    wrong = broken("wrong_flops", flops=lambda self, arch: counted(self, arch) * 2)
    assert any(p.startswith("flops: flops(smallest) = ") and "counts" in p for p in wrong), wrong
    params = broken("wrong_params", params=lambda self, arch: 7)
    assert any(p.startswith("params: params(largest) = 7, but extract(largest) counts") for p in params), params


def test_the_checker_flags_unused_positions_that_inactive_does_not_declare():
    entry = get_space("elastic_mlp")
    space_cls = type("Undeclared", (entry.build_space,), {"inactive": lambda self, values: {}})
    register_space("undeclared", {"tiny": entry.variants["tiny"]}, config_cls=entry.config_cls,
                   build_space=space_cls, build_supernet=lambda cfg: _with_space(entry.build_supernet(cfg),
                                                                                 space_cls(cfg)),
                   build_static=entry.build_static, default_variant="tiny")
    try:
        problems = contract_problems("undeclared", "tiny")
    finally:
        _SPACES.pop("undeclared")
    assert any(p.startswith("inactive: width[1] changes nothing in the smallest arch") for p in problems), problems


def test_the_checker_flags_a_latency_unit_of_the_wrong_shape_and_a_space_without_config():
    entry = get_space("elastic_mlp")
    unit = ("hidden", lambda: torch.nn.Linear(12, 8), (5,))  # declared input (5,), the layer takes 12 features
    units = type("BadUnits", (entry.build_space,), {"latency_units": lambda self, arch: [unit],
                                                     "all_latency_units": lambda self: [unit]})

    class NoConfig(SearchSpace):  # the example's space, its config kept under another name
        def __init__(self, cfg):
            self.settings = cfg
            super().__init__(entry.build_space(cfg).dimensions)

        def inactive(self, values):
            return {"width": set(range(values["depth"], self.settings.max_depth))}

        def input_shape(self, arch):
            return (self.settings.in_features,)

        def example_input(self, arch, batch=1, generator=None):
            return torch.randn((batch, self.settings.in_features), generator=generator)

        def build_static(self, arch):
            return entry.build_static(self.settings, arch)
    for name, space_cls, rule in (("bad_units", units, "latency-units: unit 'hidden' of smallest cannot run on its "
                                                        "declared input shape (1, 5): RuntimeError: mat1 and mat2"),
                                  ("no_config", NoConfig, "space: space lacks config")):
        register_space(name, {"tiny": entry.variants["tiny"]}, config_cls=entry.config_cls, build_space=space_cls,
                       build_supernet=lambda cfg, cls=space_cls: _with_space(entry.build_supernet(cfg), cls(cfg)),
                       build_static=entry.build_static, default_variant="tiny")
        try:
            problems = contract_problems(name, "tiny")
        finally:
            _SPACES.pop(name)
        assert any(p.startswith(rule) for p in problems), problems


def test_the_checker_flags_an_example_input_of_another_shape():
    entry = get_space("elastic_mlp")
    space_cls = type("LyingSpace", (entry.build_space,),
                     {"example_input": lambda self, arch, batch=1, generator=None: torch.randn(batch, 1, 12)})
    register_space("lying", {"tiny": entry.variants["tiny"]}, config_cls=entry.config_cls, build_space=space_cls,
                   build_supernet=lambda cfg: _with_space(entry.build_supernet(cfg), space_cls(cfg)),
                   build_static=entry.build_static, default_variant="tiny")
    try:
        problems = contract_problems("lying", "tiny")
    finally:
        _SPACES.pop("lying")
    assert any(p.startswith("example-input: example_input shape (2, 1, 12) disagrees with input_shape (12,)")
               for p in problems), problems


def _with_space(net, space):
    net.space = space
    return net
