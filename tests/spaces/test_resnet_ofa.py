"""The ``resnet`` space against OFA's own ``OFAResNets`` (``ofa_resnet50``) on the same random weights:
logits of the supernet and of the exported static subnet (safetensors and ONNX), and the importer's
refusals. The full grid (largest, smallest, 20 random archs x 4 resolutions) is
``python -m benchmarks.check_ofa_resnet``; this test runs a subset of it (see ``ARCHS_PER_RES``)."""
import collections
import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from search_spaces.resnet.config import ResNetConfig
from search_spaces.resnet.latency import all_units, units
from search_spaces.resnet.ofa_import import (OFA_RESNET50, convert_ofa_resnet50, expected_state,
                                             import_ofa_resnet50, ofa_key, read_ofa_checkpoint)
from search_spaces.resnet.space import ResNetSpace
from supernet.core.errors import SupernetError
from supernet.core.registry import build_supernet
from supernet.io.checkpoint import load_checkpoint
from supernet.io.export import export_subnet, load_exported
from tests.support import ofa_resnet as O

ARCHS_PER_RES = 2  # random archs per resolution here, besides the largest and the smallest (20 in the benchmark)
TOL = 1e-4


@pytest.fixture(scope="module")
def pair():
    """OFA's net on seeded random weights and our supernet converted from its checkpoint."""
    if O.ofa_networks() is None:
        pytest.skip("OFA's package is not installed (`make install` installs it: pip install --no-deps ofa)")
    torch.set_num_threads(1)
    net = O.random_ofa_resnet50(seed=0)
    config, state = convert_ofa_resnet50(O.ofa_checkpoint(net))
    ours = build_supernet("resnet", config)
    ours.load_state_dict(state)
    return net, ours.eval()


@pytest.mark.slow  # ResNet-50 forwards on the CPU
@pytest.mark.parametrize("r", O.RESOLUTIONS)
def test_logits_equal_ofa(pair, r):
    net, ours = pair
    for i, arch in enumerate(O.archs(ours.space, ARCHS_PER_RES, seed=r)):
        arch, x = ours.space.make(arch.replace(r=r)), O.image(r, seed=i)
        with torch.no_grad():
            got = ours(x, arch)
        want = O.ofa_logits(net, arch, x)
        assert want.abs().max() > 0.1  # a real signal, not vanishing logits
        assert (got - want).abs().max() <= TOL, (arch, float((got - want).abs().max()))


@pytest.mark.slow  # ResNet-50 forwards on the CPU
@pytest.mark.parametrize("r", [140, 212])
def test_logits_equal_ofa_at_odd_feature_sizes(pair, r):
    """Resolutions OFA trained on besides the four above, whose feature maps reach a stride-2 block at an odd
    size (140: 35 px, 212: 53 px): where the shortcut's ceil-mode average pool matters."""
    net, ours = pair
    for i, arch in enumerate(O.archs(ours.space, 1, seed=r)):
        arch, x = ours.space.make(arch.replace(r=r)), O.image(r, seed=i)
        with torch.no_grad():
            got = ours(x, arch)
        assert (got - O.ofa_logits(net, arch, x)).abs().max() <= TOL, arch


@pytest.mark.slow  # ResNet-50 forwards on the CPU
def test_exported_subnet_equals_ofa_static_subnet(pair, tmp_path):
    """Import from a file into a run folder, export from it (safetensors + ONNX), run both against
    OFA's ``get_active_subnet(preserve_weight=True)``."""
    ort = pytest.importorskip("onnxruntime")
    net, _ = pair
    weights = tmp_path / "ofa_resnet50.pth"
    torch.save(O.ofa_checkpoint(net), weights)
    run = import_ofa_resnet50(weights, tmp_path / "run")
    model, meta = load_checkpoint(run)
    assert meta["space"] == "resnet" and meta["step"] == 0
    rng = np.random.default_rng(7)
    for r, arch in ((128, model.space.smallest()), (160, model.space.sample(rng))):
        arch = model.space.make(arch.replace(r=r))
        folder = export_subnet(model, "resnet", arch, tmp_path / f"export-{r}")
        x = O.image(r, seed=r)
        with torch.no_grad():
            want = O.ofa_static(net, arch)(x)
            static = load_exported(folder)(x)
        onnx = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        got_onnx = torch.from_numpy(onnx.run(None, {"input": x.numpy()})[0])
        assert (static - want).abs().max() <= TOL
        assert (got_onnx - want).abs().max() <= TOL


@pytest.mark.slow  # ResNet-50 forwards on the CPU
def test_ofa_variant_costs_match_torch_counters(pair):
    _, ours = pair
    for arch in (ours.space.largest(), ours.space.smallest()):
        static = ours.extract(arch).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            static(O.image(arch["r"]))
        assert ours.flops(arch) * 2 == counter.get_total_flops()
        assert ours.params(arch) == sum(p.numel() for p in static.parameters())


# -- the importer's refusals (no OFA package needed) -------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint():
    """A checkpoint in OFA's key layout with cheap (zero) tensors of the right shapes."""
    return {"state_dict": {ofa_key(k): torch.zeros(v.shape, dtype=v.dtype) for k, v in expected_state().items()}}


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_converter_accepts_ofa_and_legacy_spellings(checkpoint):
    state = checkpoint["state_dict"]
    legacy = {k.replace("conv.conv.weight", "conv.weight").replace("bn.bn.", "bn.")
              .replace(".linear.linear.", ".linear."): v for k, v in state.items()}
    assert set(legacy) != set(state)
    for ckpt in (checkpoint, state, {"state_dict": legacy}):
        config, ours = convert_ofa_resnet50(ckpt)
        assert config == OFA_RESNET50 and list(ours) == list(expected_state())
    parallel = {f"module.{k}": v for k, v in state.items()}  # saved from a DataParallel wrapper
    assert list(convert_ofa_resnet50(parallel)[1]) == list(expected_state())
    narrowed, _ = convert_ofa_resnet50(checkpoint, resolutions=[224, 160])
    assert narrowed.resolutions == (160, 224)


def test_converter_refuses_a_resolution_ofa_never_trained(checkpoint):
    with pytest.raises(SupernetError) as exc:
        convert_ofa_resnet50(checkpoint, resolutions=[160, 230])
    assert "resolution 230" in _one_line(exc)


@pytest.mark.parametrize("damage,needle", [
    (lambda s: s.pop("blocks.3.conv2.bn.bn.running_var"), "missing key 'blocks.3.conv2.bn.bn.running_var'"),
    (lambda s: s.__setitem__("blocks.99.conv1.conv.conv.weight", torch.zeros(1)), "unexpected key 'blocks.99.conv1"),
    (lambda s: s.__setitem__("input_stem.0.conv.conv.weight", torch.zeros(16, 3, 3, 3)),
     "input_stem.0.conv.conv.weight has shape (16, 3, 3, 3)"),
    (lambda s: s.__setitem__("classifier.linear.linear.bias", "x"), "'classifier.linear.linear.bias' is a str"),
])
def test_converter_names_the_bad_key(checkpoint, damage, needle):
    state = dict(checkpoint["state_dict"])
    damage(state)
    with pytest.raises(SupernetError) as exc:
        convert_ofa_resnet50({"state_dict": state})
    assert needle in _one_line(exc)


def test_converter_refuses_another_network():
    mbv3 = {"state_dict": {"first_conv.conv.weight": torch.zeros(16, 3, 3, 3)}}
    with pytest.raises(SupernetError) as exc:
        convert_ofa_resnet50(mbv3)
    assert "not an ofa_resnet50 checkpoint" in _one_line(exc) and "first_conv.conv.weight" in str(exc.value)


class Payload:
    """A pickled object that ``weights_only`` must refuse to build."""


def test_damaged_files_are_one_line_and_write_nothing(tmp_path):
    good = tmp_path / "small.pth"
    torch.save({"state_dict": {"a": torch.zeros(1000)}}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:300])
    code = tmp_path / "code.pth"
    torch.save({"state_dict": Payload()}, code)  # loading it would import and build a class
    for path, needle in ((truncated, "truncated or damaged"), (code, "without executing code"),
                         (tmp_path / "absent.pth", "does not exist"), (good, "not an ofa_resnet50 checkpoint")):
        with pytest.raises(SupernetError) as exc:
            import_ofa_resnet50(path, tmp_path / "run")
        assert needle in _one_line(exc)
        assert not (tmp_path / "run").exists()
    with pytest.raises(SupernetError):
        read_ofa_checkpoint(tmp_path)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(SupernetError) as exc:
        import_ofa_resnet50(good, taken)
    assert "already exists" in _one_line(exc) and (taken / "keep.txt").read_text() == "mine"


# -- the space's own rules ------------------------------------------------------------------------------
SMALL = ResNetConfig(num_classes=3, stem_width=16, widths=(32, 48), base_depths=(1, 1), strides=(1, 2),
                     depths=(0, 1, 2), expands=(0.2, 0.35), width_mults=(0.8, 1.0), resolutions=(16, 20))


def test_cardinality_counts_distinct_canonical_archs():
    config = dataclasses.replace(SMALL, depths=(0, 1))
    space = ResNetSpace(config)
    grid = itertools.product(itertools.product(config.depths, repeat=3), itertools.product(config.expands, repeat=4),
                             itertools.product(range(2), repeat=4), config.resolutions)
    seen = {space.make({"d": list(d), "e": list(e), "w": list(w), "r": r}) for d, e, w, r in grid}
    assert len(seen) == space.cardinality()


def test_stem_depth_is_binary_as_in_ofa():
    space = ResNetSpace(SMALL)
    arch = space.make({**space.largest().to_dict(), "d": [1, 2, 2]})
    assert arch["d"][0] == 0  # OFA skips the stem's residual conv for any d[0] < max
    rng = np.random.default_rng(0)
    stems = collections.Counter(space.sample(rng)["d"][0] for _ in range(400))
    assert set(stems) == {0, 2} and min(stems.values()) > 150


def test_latency_units_cover_every_arch_and_run():
    space = ResNetSpace(SMALL)
    table = {key: (build, shape) for key, build, shape in all_units(SMALL)}
    rng = np.random.default_rng(0)
    for arch in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(20)]:
        chain = units(SMALL, arch)
        assert {k for k, _, _ in chain} <= set(table)
        x = torch.zeros((1,) + chain[0][2])
        with torch.no_grad():
            for key, build, shape in chain:  # each unit takes what the one before it gives
                assert tuple(x.shape[1:]) == shape, key
                x = build().eval()(x)
        assert x.shape == (1, SMALL.num_classes)
