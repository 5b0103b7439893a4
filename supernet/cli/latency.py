"""``supernet latency build|measure``: per-device latency tables and single measurements."""
from __future__ import annotations

import argparse
import json

HELP = "latency tables per device, and measurements"
EXAMPLES = """examples:
  supernet latency build runs/mnist1d --target cpu --threads 2            # table + 60 whole subnets
  supernet latency build mobilenet --variant ofa --target onnxruntime-cpu --archs 100
  supernet latency measure runs/mnist1d --arch smallest --target cpu --threads 2
  supernet latency build runs/mnist1d --target onnxruntime-cpu-int8 --statistic median   # each round's median call
  supernet latency build runs/imagenet --target cuda-graph --batch 1   # a GPU as deployed: one CUDA graph per net
  supernet latency build runs/imagenet --target ort-cuda --batch 64    # ONNX Runtime's CUDA provider (onnxruntime-gpu)
  supernet latency measure runs/llm --arch median --mode generate --prefill-tokens 128 --decode-tokens 32
  supernet search runs/mnist1d --max-latency-ms 3 --target cpu            # uses latency/cpu-<space>-<variant>-<hash>-<profile>.json"""


def add(p) -> None:
    """The arguments of ``supernet latency`` (``p``: its parser); every number checked as it is parsed."""
    from .common import THREADS, whole
    actions = p.add_subparsers(dest="latency_command", required=True)
    build = actions.add_parser("build", help="measure the unit table and whole subnets (resumable)", epilog=EXAMPLES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--archs", type=whole(1, 10**5), default=60, help="whole subnets measured to fit the correction")
    build.add_argument("--out", default="latency", help="folder of table files (default: %(default)s)")
    build.add_argument("--seed", type=whole(0, 2**32 - 1), default=0, help="seed of the measured random archs")
    build.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    measure = actions.add_parser("measure", help="measure one arch's extracted subnet", epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    measure.add_argument("--arch", required=True, help="largest | smallest | median | arch JSON file | inline JSON | a name the space defines (mobilenet: ofa:ID, an OFA pick)")
    measure.add_argument("--mode", default="forward", choices=("forward", "generate"),
                         help="forward: one call on an example batch | generate (LLM subnets): --prefill-tokens, then "
                              "--decode-tokens new tokens with the KV cache (default: %(default)s)")
    measure.add_argument("--prefill-tokens", type=whole(1, 10**6), default=128, help="generate: prompt tokens "
                         "(default: %(default)s)")
    measure.add_argument("--decode-tokens", type=whole(1, 10**6), default=32, help="generate: new tokens "
                         "(default: %(default)s)")
    for q in (build, measure):
        q.add_argument("source", help="training run / checkpoint folder, or a registered space name")
        q.add_argument("--variant", help="space variant when SOURCE is a space name")
        q.add_argument("--target", default="cpu", help="cpu | onnxruntime-cpu | onnxruntime-cpu-int8 | "
                       "openvino-cpu | openvino-cpu-int8 | executorch-xnnpack | cuda | cuda-graph | ort-cuda | "
                       "ort-tensorrt (default: %(default)s)")
        q.add_argument("--threads", type=THREADS, default=2, help="CPU threads, fixed and recorded (default: %(default)s)")
        q.add_argument("--batch", type=whole(1, 10**5), default=1, help="batch size (default: %(default)s)")
        q.add_argument("--warmup", type=whole(0, 10**6), default=10, help="untimed calls first (default: %(default)s)")
        q.add_argument("--repeats", type=whole(3, 10**6), default=30, help="timed calls per round, at least (default: %(default)s)")
        q.add_argument("--rounds", type=whole(1, 1000), default=3,
                       help="interleaved rounds; the median over rounds is kept (default: %(default)s)")
        q.add_argument("--unit-rounds", type=whole(1, 1000), default=7,
                       help="rounds for each unit of a table (default: %(default)s)")
        q.add_argument("--statistic", choices=("p10", "median"), default="p10",
                       help="what each round keeps: its 10th-percentile call (the device's own speed, steady on a "
                            "shared or throttling machine), or its median call; part of the device profile "
                            "(default: %(default)s)")


def run(args) -> None:
    from ..hardware.rounds import MeasureConfig
    from ..hardware.latency_api import build_latency, measure_arch
    generate = {} if args.latency_command == "build" else {
        "mode": args.mode, "prefill": args.prefill_tokens, "decode": args.decode_tokens}
    cfg = MeasureConfig(target=args.target, threads=args.threads, batch=args.batch, warmup=args.warmup,
                        repeats=args.repeats, rounds=args.rounds, unit_rounds=args.unit_rounds,
                        statistic=args.statistic, **generate)
    if args.latency_command == "build":
        path = build_latency(args.source, cfg, variant=args.variant, archs=args.archs, folder=args.out,
                             seed=args.seed, progress=args.progress)
        print(f"latency table: {path}")
        print(reference_line(path))
    else:
        print(json.dumps(measure_arch(args.source, args.arch, cfg, args.variant)))


def reference_line(path) -> str:
    """How steady this device measured: the reference arch's rounds, whose spread bounds how close any table can
    predict (a table is no closer than the measurement repeats)."""
    from ..hardware.latency_table import LatencyTable
    from ..hardware.rounds import latency_ms
    ref = LatencyTable.load(path, check_device=False).reference
    if not ref:
        return "reference subnet: not measured"
    low, high = ref["spread_ms"]
    middle = latency_ms(ref)
    return (f"reference subnet (the space's median arch): {middle:.3f} ms over {ref['rounds']} rounds, p10-p90 "
            f"{low:.3f}-{high:.3f} ms (+-{50 * (high - low) / middle:.1f} %): no table predicts closer than that")
