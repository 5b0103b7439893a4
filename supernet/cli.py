"""The ``supernet`` command: a thin shell over the Python API.

Each subcommand parses into a config and calls one public function. Errors a user can
cause print one line (``error: ...``) and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import fields

from .cli_finetune import EXAMPLES as FINETUNE_EXAMPLES, add_finetune, run_finetune
from .cli_latency import EXAMPLES as LATENCY_EXAMPLES
from .errors import SupernetError
from .train_config import TrainConfig, bounds

TRAIN_HELP = {
    "data": "mnist1d | digits | mnist | path/to/file.npz | imagefolder:PATH (train/, optional val/ and test/, "
            "one subfolder per class) | text:PATH (a .txt or .jsonl file, or a folder of them; with --model)",
    "model": "Hugging Face causal LM folder for --space llm_lora (frozen base; its tokenizer reads text: data)",
    "seq_len": "tokens per training sequence (text data)",
    "text_field": "field of each .jsonl record that holds the text",
    "grad_accum": "micro-batches per optimizer step (gradient accumulation; divides --batch-size)",
    "samples": "MNIST-1D examples to generate (train+test, 80/20); default 10000",
    "val_fraction": "share of the non-test examples held out as the validation split that search scores on",
    "space": "registered search space (see `supernet spaces`)",
    "variant": "space variant; default follows the data (mnist1d -> mnist1d, images -> mnist)",
    "epochs": "training epochs", "steps": "total optimizer steps (overrides --epochs)",
    "batch_size": "examples per step", "optimizer": "sgd (Nesterov) | adamw", "lr": "peak learning rate",
    "momentum": "SGD momentum", "weight_decay": "weight decay (not on biases or norms)",
    "warmup_steps": "linear warm-up steps before the cosine decay",
    "label_smoothing": "label smoothing of the largest arch's cross-entropy",
    "sampling": "sandwich (largest+smallest+N random, in-place KD) | uniform (one random arch, SPOS) | "
                "flops-even (sandwich, random archs drawn evenly over the FLOPs range) | "
                "worst-up (sandwich; each random arch the hardest on the batch of 3 near one FLOPs target)",
    "num_random": "random archs per sandwich step",
    "share_dims": "comma-separated single-value dims drawn once per step for every arch of it, "
                  "e.g. r (OFA's per-batch resolution); default: each arch draws its own",
    "kd": "kl (KL from the largest; wins on bench_trust, see README) | alpha (AlphaNet's adaptive "
          "alpha-divergence) | none (every arch on the labels)",
    "alpha_min": "negative alpha of the adaptive divergence", "alpha_max": "positive alpha",
    "alpha_clamp": "clamp of the importance ratio w^alpha", "grad_clip": "max gradient norm (0 = off)",
    "seed": "seed of data order, arch draws and init", "checkpoint_every": "steps between checkpoints (0 = end only)",
    "calib_batches": "batches of 256 training inputs for BN recalibration",
    "threads": "torch CPU threads (default: torch's choice)",
    "device": "auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N",
    "precision": "fp32 | bf16 | fp16 (autocast; weights stay fp32; fp16 adds a GradScaler)",
    "channels_last": "channels-last memory format for 2-D convolutions on a GPU (faster with bf16/fp16; CPU training always runs channels-last)",
    "data_workers": "loader processes for imagefolder data (0 = in the main process)",
    "tensorboard": "write TensorBoard events", "progress": "show a progress bar",
}

EXAMPLES = {
    "train": """examples:
  supernet train --out runs/mnist1d                       # MNIST-1D, sandwich + alpha-divergence
  supernet train --data mnist --epochs 10 --out runs/mnist  # 5000 real MNIST digits, 2-D space
  supernet train --sampling uniform --out runs/spos        # SPOS baseline on the same space
  supernet train --samples 20000 --val-fraction 0.5 --out runs/bench  # 8000 train / 8000 val / 4000 test
  supernet train --data imagefolder:data/digits --device auto --precision bf16 --out runs/img
  supernet train --resume --out runs/mnist1d               # continue an interrupted run exactly
  supernet train --space llm_lora --model models/tiny-llama --data text:corpus/ --seq-len 128 \\
      --batch-size 16 --grad-accum 2 --optimizer adamw --lr 1e-3 --steps 300 --out runs/llm
  supernet train --workers 2 --out runs/ddp                # 2 Ray Train workers (DDP) on a local Ray instance
  supernet train --workers 8 --gpus-per-worker 1 --ray-address auto --out /nfs/runs/big   # on a Ray cluster
  supernet train --resume --out runs/ddp --workers 2       # continue a distributed run (or drop --workers)""",
    "eval": """examples:
  supernet eval runs/mnist1d --arch largest --arch smallest
  supernet eval runs/mnist1d --arch my_arch.json --split val
  supernet eval runs/img --arch largest --device cuda --precision bf16""",
    "export": """examples:
  supernet export runs/mnist1d --arch smallest --out exports/small
  supernet export runs/mnist1d --arch arch.json --out exports/mine --no-onnx
  supernet export --from-search runs/search-20M --pick knee --out exports/knee
  supernet export --from-search runs/search-20M --pick max-accuracy-under-budget --max-flops 1M --out exports/1m""",
    "search": """examples:
  supernet search runs/mnist1d --objectives accuracy,flops --max-flops 2M --evaluations 200 --out runs/search-2m
  supernet search runs/mnist1d --objectives accuracy,flops,params --max-params 150K --evaluations 100
  supernet search runs/mnist1d --strategy nsga2 --evaluations 200     # plain NSGA-II, no predictor
  supernet search --resume --out runs/search-2m                       # continue an interrupted search
  supernet search runs/llm --objectives loss,params --max-params 2M --evaluations 60   # LLM: best under 2 M params
  supernet search runs/mnist1d --max-flops 2M --eval-workers 2        # evaluations on 2 local Ray actors
  supernet search runs/mnist1d --max-flops 2M --ray-address auto --eval-workers 16   # on a Ray cluster
numbers take K, M or G suffixes (x1e3, x1e6, x1e9); FLOPs count multiply-adds (MACs).""",
    "spaces": """examples:
  supernet spaces""",
}
EXAMPLES["latency"] = LATENCY_EXAMPLES
EXAMPLES["finetune"] = FINETUNE_EXAMPLES


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...``, exit 2, no usage block), and values that
    start with a minus sign (``-1M``, ``-5``) read as values, so that their check names the fault."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def whole(low: int, high: int):
    """An argparse ``type``: a whole number in ``[low, high]``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {bounds(low, True, high, True)}, got {value}")
        return value
    return parse


CALIB_BATCHES = whole(1, 10**5)
WORKERS = whole(1, 4096)
THREADS = whole(1, 1024)


def _add_train(p) -> None:
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
    ray = p.add_argument_group("scale out on Ray (see README, 'Scale out on Ray')")
    ray.add_argument("--workers", type=WORKERS, help="train on N Ray Train workers (DDP; --batch-size is the global "
                     "batch, split evenly); default: here, without Ray")
    ray.add_argument("--ray-address", help="with --workers: Ray cluster to join (auto | HOST:6379 | ray://HOST:10001; "
                     "default: start a local Ray instance)")
    ray.add_argument("--gpus-per-worker", type=float, default=0,
                     help="with --workers: GPUs per worker (0 = CPUs and gloo, 1 = one GPU each and NCCL) (default: 0)")
    ray.add_argument("--max-failures", type=whole(-1, 10**6), default=2, help="with --workers: worker failures "
                     "survived by restarting from the latest checkpoint (-1 = no limit) (default: %(default)s)")


def _add_placement(p) -> None:
    p.add_argument("--device", default="auto", help=TRAIN_HELP["device"] + " (default: %(default)s)")
    p.add_argument("--precision", default="fp32", help=TRAIN_HELP["precision"] + " (default: %(default)s)")
    p.add_argument("--channels-last", action="store_true", help=TRAIN_HELP["channels_last"])


def _add_eval(p) -> None:
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--arch", action="append", required=True,
                   help="largest | smallest | median | arch JSON file | inline JSON (repeatable)")
    p.add_argument("--split", choices=["val", "test"], action="append", help="splits to score (default: val and test)")
    p.add_argument("--calib-batches", type=CALIB_BATCHES, default=8,
                   help="batches of 256 training inputs for BN recalibration")
    _add_placement(p)


def _add_export(p) -> None:
    p.add_argument("checkpoint", nargs="?", help="run folder or checkpoint folder (default with --from-search: "
                   "the checkpoint the search ran on)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="largest | smallest | median | arch JSON file | inline JSON")
    which.add_argument("--from-search", metavar="RUN", help="pick the arch from a `supernet search` run folder")
    p.add_argument("--pick", default="max-accuracy-under-budget",
                   choices=["best-accuracy", "knee", "max-accuracy-under-budget"],
                   help="with --from-search: the most accurate arch evaluated (budgets ignored), the knee of the "
                        "feasible front, or the most accurate arch within the budgets (default: %(default)s)")
    p.add_argument("--max-flops", help="with --pick max-accuracy-under-budget: FLOPs budget instead of the search's")
    p.add_argument("--max-params", help="with --pick max-accuracy-under-budget: params budget instead of the search's")
    p.add_argument("--out", required=True, help="export folder to create")
    p.add_argument("--no-onnx", action="store_true", help="skip model.onnx")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")


def _add_search(p) -> None:
    from .search_loop import SearchConfig
    d = SearchConfig()
    p.add_argument("checkpoint", nargs="?", help="training run folder or checkpoint folder (not with --resume)")
    p.add_argument("--objectives", help="comma-separated: accuracy (maximised), loss (language models), flops, "
                   "params, latency (minimised); for a language model accuracy means its validation loss (default: accuracy,flops)")
    p.add_argument("--max-flops", help="FLOPs (MACs) budget, e.g. 20M")
    p.add_argument("--max-params", help="parameter budget, e.g. 500K")
    p.add_argument("--max-latency-ms", help="latency budget in ms on --target (uses the table of `supernet latency "
                   "build`; the front is then measured for real)")
    p.add_argument("--target", help="hardware target of latency: cpu | onnxruntime-cpu | cuda")
    p.add_argument("--latency-table", help="latency table file (default: the one for --target and this device "
                   "in latency/)")
    p.add_argument("--evaluations", default=str(d.evaluations),
                   help="real evaluations in all, baselines included (default: %(default)s)")
    p.add_argument("--initial", type=int, help="random archs evaluated in round 0 besides the baselines "
                   "(default: evaluations/4 within 5..50)")
    for name, text in (("per_round", "real evaluations per round"), ("uncertain", "of those, chosen by uncertainty"),
                       ("generations", "NSGA-II generations per round"), ("population", "NSGA-II population"),
                       ("seed", "seed of every random choice")):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name),
                       help=f"{text} (default: %(default)s)")
    p.add_argument("--predictor", default=d.predictor, help="accuracy predictor: auto (picked per round by CV "
                   "Kendall tau) | ensemble | mlp | gbt | ridge (default: %(default)s)")
    p.add_argument("--eval-timeout", type=float, help="seconds after which an evaluation is a recorded failure")
    p.add_argument("--max-failures", type=int, help="stop (keeping every result) after more failed evaluations "
                   "than this (default: evaluations/5)")
    p.add_argument("--strategy", default=d.strategy, help="predictor | nsga2 (plain) | random (default: %(default)s)")
    p.add_argument("--calib-batches", type=CALIB_BATCHES, default=8,
                   help="batches of 256 training inputs for BN recalibration")
    p.add_argument("--threads", type=THREADS, help="torch CPU threads (default: torch's choice)")
    _add_placement(p)
    p.add_argument("--out", help="run folder (default runs/search-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=True, help="write TensorBoard events")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    ray = p.add_argument_group("scale out on Ray (see README, 'Scale out on Ray')")
    ray.add_argument("--ray-address", help="run the real evaluations on this Ray cluster (auto | HOST:6379 | "
                     "ray://HOST:10001); --target's latency is measured on a node with resource target:<target>")
    ray.add_argument("--eval-workers", type=WORKERS, help="Ray actors evaluating in parallel (alone: on a local Ray "
                     "instance; default with --ray-address: one per CPU of the cluster)")
    ray.add_argument("--eval-retries", type=whole(0, 100), default=1,
                     help="with Ray: times a failed or timed-out evaluation is tried again (default: %(default)s)")


def _search_config(args):
    """SearchConfig from the parsed flags; budgets and --evaluations accept K/M/G suffixes."""
    from .search_loop import SearchConfig, parse_quantity
    budgets = {name: parse_quantity(getattr(args, f"max_{name}"), f"--max-{name}")
               for name in ("flops", "params") if getattr(args, f"max_{name}") is not None}
    if args.max_latency_ms is not None:
        budgets["latency"] = parse_quantity(args.max_latency_ms, "--max-latency-ms")
    evaluations = parse_quantity(args.evaluations, "--evaluations")
    if evaluations != int(evaluations):
        raise SupernetError(f"--evaluations must be a whole number, got {args.evaluations!r}")
    objectives = tuple(args.objectives.split(",")) if args.objectives else SearchConfig().objectives
    return SearchConfig(objectives=objectives, budgets=budgets, evaluations=int(evaluations),
                        initial=args.initial, per_round=args.per_round, uncertain=args.uncertain,
                        generations=args.generations, population=args.population, predictor=args.predictor,
                        strategy=args.strategy, seed=args.seed, target=args.target, eval_timeout=args.eval_timeout,
                        max_failures=args.max_failures)


CLI_OPTIONS = {"budgets.flops": "--max-flops", "budgets.params": "--max-params", "budgets.latency": "--max-latency-ms",
               **{f: "--" + f.replace("_", "-") for f in ("evaluations", "initial", "per_round", "uncertain", "generations",
                                                          "population", "strategy", "eval_timeout", "max_failures")}}


SEARCH_FLAGS = ("objectives", "max_flops", "max_params", "max_latency_ms", "target", "evaluations", "initial",
                "per_round", "uncertain", "generations", "population", "predictor", "strategy", "seed", "eval_timeout",
                "max_failures")


def _defaults_only(args) -> bool:
    """True when no search option differs from its default (a plain ``--resume``)."""
    defaults = build_parser("search").parse_args(["search"])
    return all(getattr(args, k) == getattr(defaults, k) for k in SEARCH_FLAGS)


def _print_search(result) -> None:
    from .search_problem import format_quantity
    skip = ("index", "round", "baseline", "status", "error", "feasible", "is_pareto", "arch")
    for row in result.front:
        metrics = "  ".join(f"{k}={format_quantity(v) if abs(v) >= 1000 else f'{v:.4g}'}" for k, v in row.items()
                            if k not in skip)
        print(f"front  {metrics}  {json.dumps(row['arch'], separators=(',', ':'))}")
    for how, row in result.picks.items():
        if row:
            print(f"pick   {how}: evaluation {row['index']}")
    failed = f" ({result.failures} failed, see evaluations.csv)" if result.failures else ""
    point = (result.reference or {}).get("point")
    ref = (" (normalised; reference point " + ", ".join(f"{k}={format_quantity(v) if abs(v) >= 1000 else f'{v:.4g}'}"
                                                        for k, v in point.items()) + ")") if point else ""
    print(f"hypervolume {result.hypervolume:.4f}{ref} over {len(result.evaluations)} real evaluations{failed}")
    for note in result.warnings:
        print(f"warning: {note}")
    print(f"searched: {result.run_dir}")


def _export(args) -> None:
    from .search_loop import parse_quantity
    budgets = {n: parse_quantity(getattr(args, f"max_{n}"), f"--max-{n}")
               for n in ("flops", "params") if getattr(args, f"max_{n}") is not None}
    if args.from_search:
        from .api import export_from_search
        if budgets and args.pick != "max-accuracy-under-budget":
            raise SupernetError("--max-flops / --max-params apply only to --pick max-accuracy-under-budget")
        out, record = export_from_search(args.from_search, args.pick, args.out, budgets=budgets or None,
                                         checkpoint=args.checkpoint, onnx=not args.no_onnx, overwrite=args.overwrite)
        print(f"picked ({args.pick}): evaluation {record['index']} {json.dumps(record['arch'], separators=(',', ':'))}")
    else:
        from .exporter import export_from_checkpoint
        if budgets:
            raise SupernetError("--max-flops / --max-params apply only with --from-search")
        if args.checkpoint is None:
            raise SupernetError("export needs CHECKPOINT (a run folder or checkpoint folder)")
        out = export_from_checkpoint(args.checkpoint, args.arch, args.out, onnx=not args.no_onnx,
                                     overwrite=args.overwrite)
    print(f"exported: {out}")


def _add_latency(p) -> None:
    from .cli_latency import add_latency
    add_latency(p)


# name -> (help line, function adding its arguments)
COMMANDS = {"train": ("train a supernet", _add_train),
            "eval": ("evaluate archs: BN recalibration, accuracy, FLOPs, params", _add_eval),
            "export": ("export a static subnet (safetensors + JSON + ONNX)", _add_export),
            "search": ("predictor-guided NSGA-II search under FLOPs / params budgets", _add_search),
            "finetune": ("fine-tune an exported subnet with distillation from the supernet's largest", add_finetune),
            "latency": ("latency tables per device, and measurements", _add_latency),
            "spaces": ("list registered search spaces and variants", lambda p: None)}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the arguments of that command alone (the others are
    listed with their help line), so ``supernet --help`` imports neither torch nor the search."""
    parser = _Parser(prog="supernet", description="Train a weight-entangled supernet once, "
                     "then evaluate and export subnets without retraining.",
                     epilog="run `supernet COMMAND --help` for examples")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, add) in COMMANDS.items():
        p = sub.add_parser(name, help=text, epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if only is None or only == name:
            add(p)
    return parser


def _run(args) -> None:
    if args.command == "train":
        from .training import resume_training, train
        scale = _scale(args)
        if args.resume:
            _refuse_options_on_resume(args)
            run = resume_training(args.out, device=None if args.device == "auto" else args.device, scale=scale)
        else:
            names = {f.name for f in fields(TrainConfig)}
            run = train(TrainConfig(**{k: v for k, v in vars(args).items() if k in names}), args.out,
                        overwrite=args.overwrite, scale=scale)
        print(f"trained: {run}")
    elif args.command == "eval":
        from .api import evaluate
        for result in evaluate(args.checkpoint, args.arch, splits=args.split or ["val", "test"],
                               calib_batches=args.calib_batches, device=args.device, precision=args.precision,
                               channels_last=args.channels_last):
            print(json.dumps(result))
    elif args.command == "export":
        _export(args)
    elif args.command == "finetune":
        run_finetune(args)
    elif args.command == "search":
        from .api import search
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        config = None if args.resume and _defaults_only(args) else _search_config(args)
        import warnings
        with warnings.catch_warnings():  # printed as one `warning:` line each by _print_search
            warnings.simplefilter("ignore", UserWarning)
            _print_search(search(args.checkpoint, config, args.out, resume=args.resume, overwrite=args.overwrite,
                                 progress=args.progress, tensorboard=args.tensorboard,
                                 calib_batches=args.calib_batches, latency_table=args.latency_table,
                                 option_names=CLI_OPTIONS, device=args.device, precision=args.precision,
                                 channels_last=args.channels_last, ray_address=args.ray_address,
                                 eval_workers=args.eval_workers, eval_retries=args.eval_retries))
    elif args.command == "latency":
        from .cli_latency import run_latency
        run_latency(args)
    elif args.command == "spaces":
        from .registry import get_space, space_names
        for name in space_names():
            entry = get_space(name)
            for variant, cfg in entry.variants.items():
                print(f"{name}  {variant:<8} {entry.build_space(cfg).cardinality():.3e} archs")


def _scale(args):
    """The ScaleConfig of ``--workers`` (None without it); the other Ray options need it."""
    from .train_config import ScaleConfig
    if args.workers is None:
        given = [flag for flag, value, default in (("--ray-address", args.ray_address, None),
                                                   ("--gpus-per-worker", args.gpus_per_worker, 0),
                                                   ("--max-failures", args.max_failures, 2)) if value != default]
        if given:
            raise SupernetError(f"{', '.join(given)} apply only with --workers N (training on Ray)")
        return None
    return ScaleConfig(args.workers, args.ray_address, args.gpus_per_worker, args.max_failures)


def _refuse_options_on_resume(args) -> None:
    """``--resume`` continues the saved config: a training option given with it is refused, not ignored."""
    defaults = build_parser("train").parse_args(["train"])
    given = [f.name for f in fields(TrainConfig) if f.name != "device"
             and getattr(args, f.name) != getattr(defaults, f.name)]
    if given:
        raise SupernetError(f"--resume continues the run with its saved options; drop {', '.join(map(_flag, given))} "
                            "(only --device may change)")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else "").parse_args(argv)
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
