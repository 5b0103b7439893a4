"""Bit-for-bit check of the ``resnet`` space's ``ofa_resnet50`` import against OFA's own package.

OFA's ``OFAResNets`` (``ofa_resnet50``: d {0,1,2}, e {0.2,0.25,0.35}, w {0.65,0.8,1.0}) on seeded
random weights (BN statistics included) is converted by ``convert_ofa_resnet50``; then, for the
largest, the smallest and ``--archs`` random archs at each resolution (128, 160, 192, 224), in eval
mode, batch 1, fp32:

- ``supernet``: our ``forward(x, arch)`` against OFA's ``set_active_subnet(d, e, w)`` + forward;
- ``static``: our ``extract(arch)`` against OFA's ``get_active_subnet(preserve_weight=True)``;
- ``export``: for each arch at one resolution (rotating through the four), the export files
  (``export_subnet``: ``model.safetensors`` loaded back with ``load_exported``, and ``model.onnx`` run by
  onnxruntime) against OFA's static subnet.

Writes the max |difference| of each case and overall, against the tolerance 1e-4, to
``benchmarks/results/ofa_resnet_equivalence.json``. OFA's package is a test-only dependency
(``pip install --no-deps ofa``), imported with the stand-in of ``tests/support/ofa_stub.py``.

    python -m benchmarks.check_ofa_resnet                 # the full grid (~4 min on one core)
    python -m benchmarks.check_ofa_resnet --archs 2       # a quick look
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from search_spaces.resnet.ofa_import import convert_ofa_resnet50
from supernet.core.registry import build_supernet
from supernet.io.export import export_subnet, load_exported
from supernet.io.files import atomic_write_json
from tests.support import ofa_resnet as O

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def check(n_archs: int, seed: int) -> dict:
    net = O.random_ofa_resnet50(seed)
    config, state = convert_ofa_resnet50(O.ofa_checkpoint(net))
    ours = build_supernet("resnet", config)
    ours.load_state_dict(state)
    ours.eval()
    cases = []
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as tmp:
        for i, base in enumerate(O.archs(ours.space, n_archs, seed)):
            for j, r in enumerate(O.RESOLUTIONS):
                arch, x = ours.space.make(base.replace(r=r)), O.image(r, seed=100 * i + j)
                start = time.perf_counter()
                with torch.no_grad():
                    want, got = O.ofa_logits(net, arch, x), ours(x, arch)
                    ofa_static = O.ofa_static(net, arch)
                    want_static, got_static = ofa_static(x), ours.extract(arch).eval()(x)
                case = {"arch": arch.to_dict(), "supernet": _diff(got, want), "static": _diff(got_static, want_static),
                        "logit_scale": float(want.abs().max()), "macs": ours.flops(arch)}
                if j == i % len(O.RESOLUTIONS):
                    folder = export_subnet(ours, "resnet", arch, Path(tmp) / f"export-{i}-{r}")
                    with torch.no_grad():
                        case["export_safetensors"] = _diff(load_exported(folder)(x), want_static)
                    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
                    case["export_onnx"] = _diff(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]),
                                                want_static)
                case["seconds"] = round(time.perf_counter() - start, 3)
                cases.append(case)
                print(f"arch {i:2d} r {r}: supernet {case['supernet']:.2e} static {case['static']:.2e}"
                      + (f" safetensors {case['export_safetensors']:.2e} onnx {case['export_onnx']:.2e}"
                         if "export_onnx" in case else ""), flush=True)
    worst = {k: max(c[k] for c in cases if k in c) for k in ("supernet", "static", "export_safetensors", "export_onnx")}
    return {"cases": cases, "max_abs_diff": worst, "tolerance": TOL, "all_within": all(v <= TOL for v in worst.values()),
            "n_cases": len(cases), "n_exports": sum("export_onnx" in c for c in cases)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", type=int, default=20, help="random archs besides largest and smallest (default: 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ofa_resnet_equivalence.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if O.ofa_networks() is None:
        raise SystemExit("error: OFA's package is not installed: pip install --no-deps ofa")
    start = time.perf_counter()
    result = check(args.archs, args.seed)
    result.update({"seconds": round(time.perf_counter() - start, 1), "threads": args.threads, "seed": args.seed,
                   "torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor(),
                   "resolutions": list(O.RESOLUTIONS), "net": "ofa_resnet50"})
    atomic_write_json(Path(args.out), result)
    print(json.dumps({k: result[k] for k in ("max_abs_diff", "all_within", "n_cases", "n_exports", "seconds")}))


if __name__ == "__main__":
    main()
