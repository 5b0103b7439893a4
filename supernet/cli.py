"""The ``supernet`` command: a thin shell over the Python API.

Each subcommand parses into a config and calls one public function. Errors a user can
cause print one line (``error: ...``) and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .errors import SupernetError

TRAIN_HELP = {
    "data": "mnist1d | digits | mnist | path/to/file.npz",
    "samples": "MNIST-1D examples to generate (train+test, 80/20); default 10000",
    "space": "registered search space (see `supernet spaces`)",
    "variant": "space variant; default follows the data (mnist1d -> mnist1d, images -> mnist)",
    "epochs": "training epochs", "steps": "total optimizer steps (overrides --epochs)",
    "batch_size": "examples per step", "optimizer": "sgd (Nesterov) | adamw", "lr": "peak learning rate",
    "momentum": "SGD momentum", "weight_decay": "weight decay (not on biases or norms)",
    "warmup_steps": "linear warm-up steps before the cosine decay",
    "label_smoothing": "label smoothing of the largest arch's cross-entropy",
    "sampling": "sandwich (largest+smallest+N random, in-place KD) | uniform (one random arch, SPOS)",
    "num_random": "random archs per sandwich step", "kd": "alpha (AlphaNet adaptive alpha-divergence) | kl",
    "alpha_min": "negative alpha of the adaptive divergence", "alpha_max": "positive alpha",
    "alpha_clamp": "clamp of the importance ratio w^alpha", "grad_clip": "max gradient norm (0 = off)",
    "seed": "seed of data order, arch draws and init", "checkpoint_every": "steps between checkpoints (0 = end only)",
    "calib_batches": "batches of 256 training inputs for BN recalibration",
    "threads": "torch CPU threads (default: torch's choice)",
    "tensorboard": "write TensorBoard events", "progress": "show a progress bar",
}

EXAMPLES = {
    "train": """examples:
  supernet train --out runs/mnist1d                       # MNIST-1D, sandwich + alpha-divergence
  supernet train --data mnist --epochs 10 --out runs/mnist  # 5000 real MNIST digits, 2-D space
  supernet train --sampling uniform --out runs/spos        # SPOS baseline on the same space
  supernet train --resume --out runs/mnist1d               # continue an interrupted run exactly""",
    "eval": """examples:
  supernet eval runs/mnist1d --arch largest --arch smallest
  supernet eval runs/mnist1d --arch my_arch.json --split val""",
    "export": """examples:
  supernet export runs/mnist1d --arch smallest --out exports/small
  supernet export runs/mnist1d --arch arch.json --out exports/mine --no-onnx""",
    "spaces": """examples:
  supernet spaces""",
}


def _add_train(sub) -> None:
    from .training import TrainConfig
    p = sub.add_parser("train", help="train a supernet", epilog=EXAMPLES["train"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=TRAIN_HELP[f.name])
            continue
        kind = {"int": int, "float": float, "int | None": int, "str | None": str}.get(str(f.type), str)
        p.add_argument(flag, type=kind, default=f.default, help=f"{TRAIN_HELP[f.name]} (default: {f.default})")
    p.add_argument("--out", help="run folder (default runs/train-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def _add_eval_export(sub) -> None:
    p = sub.add_parser("eval", help="evaluate archs: BN recalibration, accuracy, FLOPs, params",
                       epilog=EXAMPLES["eval"], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--arch", action="append", required=True,
                   help="largest | smallest | median | arch JSON file | inline JSON (repeatable)")
    p.add_argument("--split", choices=["val", "test"], action="append", help="splits to score (default: val and test)")
    p = sub.add_parser("export", help="export a static subnet (safetensors + JSON + ONNX)",
                       epilog=EXAMPLES["export"], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--arch", required=True, help="largest | smallest | median | arch JSON file | inline JSON")
    p.add_argument("--out", required=True, help="export folder to create")
    p.add_argument("--no-onnx", action="store_true", help="skip model.onnx")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supernet", description="Train a weight-entangled supernet once, "
                                     "then evaluate and export subnets without retraining.",
                                     epilog="run `supernet COMMAND --help` for examples")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_eval_export(sub)
    sub.add_parser("spaces", help="list registered search spaces and variants", epilog=EXAMPLES["spaces"],
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def _run(args) -> None:
    if args.command == "train":
        from .training import TrainConfig, resume_training, train
        if args.resume:
            run = resume_training(args.out)
        else:
            names = {f.name for f in fields(TrainConfig)}
            run = train(TrainConfig(**{k: v for k, v in vars(args).items() if k in names}), args.out,
                        overwrite=args.overwrite)
        print(f"trained: {run}")
    elif args.command == "eval":
        from .api import evaluate
        for result in evaluate(args.checkpoint, args.arch, splits=args.split or ["val", "test"]):
            print(json.dumps(result))
    elif args.command == "export":
        from .exporter import export_from_checkpoint
        out = export_from_checkpoint(args.checkpoint, args.arch, args.out, onnx=not args.no_onnx,
                                     overwrite=args.overwrite)
        print(f"exported: {out}")
    elif args.command == "spaces":
        from .registry import get_space, space_names
        for name in space_names():
            entry = get_space(name)
            for variant, cfg in entry.variants.items():
                print(f"{name}  {variant:<8} {entry.build_space(cfg).cardinality():.3e} archs")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except SupernetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
