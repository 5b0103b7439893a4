"""OFA's published supernets imported bit for bit, checked against OFA's own package (``ofa``, --no-deps).

For each of the three MobileNet-family nets: OFA's supernet with random weights (every BN, the kernel
transformation matrices and the classifier perturbed), saved as OFA's checkpoint files are, imported
with ``supernet import ofa``; logits equal OFA's ``set_active_subnet`` + forward (eval) within 1e-4
for the largest, the smallest and 2 random archs at 128, 160, 192 and 224 px (the 22-arch grid is
``python -m benchmarks.check_ofa_equivalence``), and the exported static subnet (safetensors, and ONNX
through onnxruntime) equals OFA's ``get_active_subnet(preserve_weight=True)``. OFA's specialised
picks (``ofa:ID``) map to archs whose OFA net config is the pick's.
"""
import numpy as np
import pytest
import torch

from supernet.cli.main import main as cli
from supernet.io.checkpoint import load_checkpoint
from tests.support import ofa_stub

ofa_stub.import_ofa()  # OFA's package is a test dependency (Makefile: pip install --no-deps ofa); missing = failure

from search_spaces.mobilenet.ofa_nets import OFA_NETS, to_ofa_arch  # noqa: E402
from search_spaces.mobilenet.ofa_specialized import compact, fitting, table  # noqa: E402

NETS = list(OFA_NETS)
RESOLUTIONS = (128, 160, 192, 224)


@pytest.fixture(scope="module", params=NETS)
def imported(request, tmp_path_factory):
    """(net name, OFA's supernet, our imported supernet) with the same random weights."""
    torch.set_num_threads(1)
    net = request.param
    ofa = ofa_stub.build_ofa_net(net, seed=NETS.index(net))
    folder = tmp_path_factory.mktemp(net.replace(".", "_"))
    ofa_stub.save_ofa_checkpoint(ofa, folder / "ofa.pth")
    assert cli(["import", "ofa", "--net", net, "--weights", str(folder / "ofa.pth"), "--out", str(folder / "run")]) == 0
    ours, meta = load_checkpoint(folder / "run")
    assert meta["variant"] == net and meta["imported"]["net"] == net
    return net, ofa, ours.eval()


def archs(space, n_random=2, seed=0):
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]


def ofa_logits(ofa, config, arch, x):
    ofa_stub.set_ofa_arch(ofa, to_ofa_arch(config, arch))
    return ofa(x)


@pytest.mark.slow
@torch.no_grad()
def test_logits_equal_ofa(imported):
    net, ofa, ours = imported
    g = torch.Generator().manual_seed(0)
    for arch in archs(ours.space):
        for r in RESOLUTIONS:
            a = ours.space.make({**dict(arch), "r": r})
            x = torch.randn(1, 3, r, r, generator=g)
            theirs = ofa_logits(ofa, ours.config, a, x)
            assert theirs.std() > 0.3  # logits of a size the tolerance means something against
            diff = (ours(x, a) - theirs).abs().max().item()
            assert diff <= 1e-4, f"{net} {dict(a)}: max |ours - OFA| = {diff}"


@torch.no_grad()
def test_kernel_transform_is_what_makes_it_match(imported):
    """Without the transformation matrices (the plain centre of the 7x7), small kernels differ."""
    from dataclasses import replace

    from supernet.core.registry import build_supernet
    net, ofa, ours = imported
    plain = build_supernet("mobilenet", replace(ours.config, kernel_transform=False))
    plain.load_state_dict({k: v for k, v in ours.state_dict().items() if "_matrix" not in k})
    arch = ours.space.make({**dict(ours.space.smallest()), "r": 128})
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    assert (plain.eval()(x, arch) - ofa_logits(ofa, ours.config, arch, x)).abs().max() > 1e-2


@pytest.mark.slow
@torch.no_grad()
def test_export_equals_ofa_active_subnet(imported, tmp_path):
    import onnxruntime as ort

    from supernet.io.export import export_subnet, load_exported
    net, ofa, ours = imported
    arch = ours.space.make({**dict(archs(ours.space, 1, seed=7)[-1]), "r": 160})
    ofa_stub.set_ofa_arch(ofa, to_ofa_arch(ours.config, arch))
    subnet = ofa.get_active_subnet(preserve_weight=True).eval()
    out = export_subnet(ours, "mobilenet", arch, tmp_path / "export")
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(2))
    expected = subnet(x)
    static = load_exported(out)  # model.safetensors into the static network
    assert (static(x) - expected).abs().max().item() <= 1e-4
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(onnx_out - expected.numpy()).max() <= 1e-4


def test_ofa_picks_are_the_archs_ofa_names(imported):
    """Each OFA pick that fits the net, as our arch, is the subnet whose net config OFA ships."""
    net, ofa, ours = imported
    picks = fitting(ours.config)
    assert len(picks) >= 6
    for pick in picks:
        arch = ours.space.load_arch(f"ofa:{pick}")
        ofa_stub.set_ofa_arch(ofa, to_ofa_arch(ours.config, arch))
        config = ofa.get_active_net_config()
        assert compact(config, {"image_size": arch["r"]}) == table()[pick]


@torch.no_grad()
def test_the_ofa_variant_is_ofa_w10_without_kernel_transform():
    """The ``ofa`` variant (trained from scratch before this import existed) is OFA's MobileNetV3 w1.0
    built with ``KERNEL_TRANSFORM_MODE = None``: same tensors, same logits."""
    from search_spaces.mobilenet import VARIANTS
    from search_spaces.mobilenet.ofa_import import canonical, convert_state
    from supernet.core.registry import build_supernet
    try:
        ofa = ofa_stub.build_ofa_net(NETS[0], seed=5, kernel_transform=False)
        state = convert_state({canonical(k): v for k, v in ofa.state_dict().items()}, "ofa", VARIANTS["ofa"], "x")
        ours = build_supernet("mobilenet", VARIANTS["ofa"])
        ours.load_state_dict(state)
        ours.eval()
        for arch in archs(ours.space, 1):
            x = torch.randn(1, 3, arch["r"], arch["r"], generator=torch.Generator().manual_seed(3))
            assert (ours(x, arch) - ofa_logits(ofa, ours.config, arch, x)).abs().max() <= 1e-4
    finally:
        ofa_stub.import_ofa()  # back to KERNEL_TRANSFORM_MODE = 1
