"""Our imported OFA supernets against OFA's own package, on the issue's full grid.

For each of OFA's MobileNet-family nets (``ofa_mbv3_d234_e346_k357_w1.0`` / ``w1.2``,
``ofa_proxyless_d234_e346_k357_w1.3``): OFA's supernet (``ofa`` package, ``--no-deps``, imported with
the torchvision stand-in of ``tests/support/ofa_stub.py``) with random weights (BN, the kernel
transformation matrices and the classifier perturbed), saved as OFA's checkpoint files are and
imported with ``supernet import ofa``. Then, for the largest, the smallest and 20 random archs
(seeded) at 128, 160, 192 and 224 px, in fp32 eval mode:

- logits: ours (``supernet(x, arch)``) vs OFA's ``set_active_subnet(ks, e, d)`` + forward;
- export (each arch at one of the four sizes, in turn; an ONNX export takes seconds): our exported
  static subnet (``model.safetensors`` loaded by ``load_exported``, and ``model.onnx`` run by
  onnxruntime) vs OFA's ``get_active_subnet(preserve_weight=True)``.

Writes the largest absolute difference of each check per net, and whether all are within 1e-4,
to ``benchmarks/results/ofa_equivalence.json``. The unit test (``tests/spaces/test_ofa_import.py``)
runs a subset of this grid in CI.

    python -m benchmarks.check_ofa_equivalence                     # the full grid, 3 nets in one run
    python -m benchmarks.check_ofa_equivalence --nets ofa_mbv3_d234_e346_k357_w1.0   # one net per run (~6 min
        each on 2 shared cores); runs with the same settings add their nets to the same JSON
    python -m benchmarks.check_ofa_equivalence --random 2 --no-export   # a quick look
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import RESULTS

TOLERANCE = 1e-4
RESOLUTIONS = (128, 160, 192, 224)


def check_net(net: str, n_random: int, export: bool, batch: int, tmp: Path) -> dict:
    import onnxruntime as ort

    from search_spaces.mobilenet.ofa_nets import to_ofa_arch
    from supernet.api import import_ofa
    from supernet.io.checkpoint import load_checkpoint
    from supernet.io.export import export_subnet, load_exported
    from tests.support import ofa_stub
    start = time.perf_counter()
    ofa = ofa_stub.build_ofa_net(net, seed=1)
    ofa_stub.save_ofa_checkpoint(ofa, tmp / f"{net}.pth")
    run = import_ofa(net, tmp / f"{net}.pth", tmp / f"{net}-run")
    ours = load_checkpoint(run)[0].eval()
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    archs = [ours.space.largest(), ours.space.smallest()] + [ours.space.sample(rng) for _ in range(n_random)]
    worst = {"logits": 0.0, "safetensors": 0.0, "onnx": 0.0}
    checked = {"logits": 0, "exports": 0}
    logit_scale = []
    with torch.no_grad():
        for i, base in enumerate(archs):
            for r in RESOLUTIONS:
                arch = ours.space.make({**dict(base), "r": r})
                x = torch.randn(batch, 3, r, r, generator=g)
                ofa_stub.set_ofa_arch(ofa, to_ofa_arch(ours.config, arch))
                theirs = ofa(x)
                logit_scale.append(float(theirs.std()))
                worst["logits"] = max(worst["logits"], float((ours(x, arch) - theirs).abs().max()))
                checked["logits"] += 1
                if not export or r != RESOLUTIONS[i % len(RESOLUTIONS)]:  # each arch exported at one size
                    continue
                subnet = ofa.get_active_subnet(preserve_weight=True).eval()
                expected = subnet(x)
                folder = export_subnet(ours, "mobilenet", arch, tmp / f"{net}-export", overwrite=True)
                worst["safetensors"] = max(worst["safetensors"], float((load_exported(folder)(x) - expected).abs().max()))
                session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
                got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
                worst["onnx"] = max(worst["onnx"], float(np.abs(got - expected.numpy()).max()))
                checked["exports"] += 1
            print(f"  {net}: arch {i + 1}/{len(archs)} done; worst so far {worst}", flush=True)
    return {"archs": len(archs), "resolutions": list(RESOLUTIONS), "checked": checked,
            "max_abs_diff": worst, "median_logit_std": float(np.median(logit_scale)),
            "within_tolerance": all(v <= TOLERANCE for v in worst.values()),
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--random", type=int, default=20, help="random archs besides largest and smallest")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--no-export", action="store_true", help="logits only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nets", nargs="+", help="default: all three")
    p.add_argument("--out", default=str(RESULTS / "ofa_equivalence.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from search_spaces.mobilenet.ofa_nets import OFA_NETS
    from supernet.io.files import atomic_write_json
    from tests.support.ofa_stub import OFA_VERSION
    nets = args.nets or list(OFA_NETS)
    out = {"ofa_version": OFA_VERSION, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
           "threads": args.threads, "batch": args.batch, "tolerance": TOLERANCE, "dtype": "float32", "nets": {}}
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    if args.nets and {k: v for k, v in previous.items() if k not in ("nets", "all_within_tolerance")} == {
            k: v for k, v in out.items() if k != "nets"}:
        out["nets"] = previous.get("nets", {})  # same settings: --nets runs add up (each net in its own run)
    with tempfile.TemporaryDirectory() as tmp:
        for net in nets:
            out["nets"][net] = check_net(net, args.random, not args.no_export, args.batch, Path(tmp))
            print(net, json.dumps(out["nets"][net]), flush=True)
    out["all_within_tolerance"] = all(r["within_tolerance"] for r in out["nets"].values())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}; all within {TOLERANCE}: {out['all_within_tolerance']}")
    return 0 if out["all_within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
