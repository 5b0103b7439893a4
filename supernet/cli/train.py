"""``supernet train``: a supernet trained once (sandwich rule, in-place distillation), here or on Ray.

The flags are :class:`~supernet.training.train_config.TrainConfig`'s fields, plus each installed space's
own options (its :class:`~supernet.core.options.SpaceOptions`, named in the ``supernet.space_options``
entry-point group, read without importing torch), which fill ``space_options``.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields

from ..core.errors import SupernetError
from ..training.train_config import ENGINE_DEFAULTS, TrainConfig
from .common import WORKERS, Parser, add_field, flag, whole

HELP = "train a supernet"
EXAMPLES = """examples:
  supernet train --out runs/mnist1d                       # MNIST-1D, sandwich + KL distillation
  supernet train --data mnist --epochs 10 --out runs/mnist  # 5000 real MNIST digits, 2-D space
  supernet train --sampling uniform --out runs/spos        # SPOS baseline on the same space
  supernet train --kd kl:0.3,alpha --out runs/warm         # KL for the first 30% of the steps, then alpha
  supernet train --kd alpha --grad-clip-value 1.0 --out runs/alphanet   # AlphaNet's divergence and value clipping
  supernet train --samples 20000 --val-fraction 0.5 --out runs/bench  # 8000 train / 8000 val / 4000 test
  supernet train --data imagefolder:data/digits --device auto --precision bf16 --out runs/img
  supernet data pack imagefolder:data/imagenet --size 256 --out data/imagenet-256   # decode once...
  supernet train --data packed:data/imagenet-256 --device cuda --precision bf16 --channels-last --out runs/in
  supernet train --data imagefolder:data/imagenet --decoder dali --device cuda --out runs/in-dali
  supernet train --resume --out runs/mnist1d               # continue an interrupted run exactly
  supernet train --init runs/ofa --data imagefolder:data/flowers --steps 2000 --out runs/flowers
                                                           # start from a trained or imported supernet (OFA's)
  supernet train --space llm_lora --model models/tiny-llama --data text:corpus/ --seq-len 128 \\
      --batch-size 16 --grad-accum 2 --optimizer adamw --lr 1e-3 --steps 300 --out runs/llm
  supernet train --workers 2 --out runs/ddp                # 2 Ray Train workers (DDP) on a local Ray instance
  supernet train --workers 8 --gpus-per-worker 1 --ray-address auto --out /nfs/runs/big   # on a Ray cluster
  supernet train --resume --out runs/ddp --workers 2       # continue a distributed run (or drop --workers)"""

def space_option_classes() -> dict[str, type]:
    """Space name -> its options class, from the ``supernet.space_options`` entry points (torch-free modules)."""
    from importlib.metadata import entry_points
    found = {}
    for ep in entry_points(group="supernet.space_options"):
        try:
            found[ep.name] = ep.load()
        except Exception:  # noqa: BLE001  (a space that fails to import: the registry names it in one line)
            pass
    return found


def add(p) -> None:
    """The flags of :class:`TrainConfig`'s fields (help, choices, default from each field), the run folder's,
    each installed space's own options and the Ray group."""
    for f in fields(TrainConfig):
        if f.metadata.get("cli") is False:
            continue
        shown = f"the space's, else {ENGINE_DEFAULTS[f.name]}" if f.name in ENGINE_DEFAULTS else f.default
        add_field(p, f, default=f.default, shown=None if str(f.type) == "bool" else shown, choices=False)
    p.add_argument("--out", help="run folder (default runs/train-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    _add_space_options(p)
    ray = p.add_argument_group("scale out on Ray (see README, 'Scale out on Ray')")
    ray.add_argument("--workers", type=WORKERS, help="train on N Ray Train workers (DDP; --batch-size is the global "
                     "batch, split evenly); default: here, without Ray")
    ray.add_argument("--ray-address", help="with --workers: Ray cluster to join (auto | HOST:6379 | ray://HOST:10001; "
                     "default: start a local Ray instance)")
    ray.add_argument("--gpus-per-worker", type=float, default=0,
                     help="with --workers: GPUs per worker (0 = CPUs and gloo, 1 = one GPU each and NCCL) (default: 0)")
    ray.add_argument("--max-failures", type=whole(-1, 10**6), default=2, help="with --workers: worker failures "
                     "survived by restarting from the latest checkpoint (-1 = no limit) (default: %(default)s)")


def _add_space_options(p) -> None:
    """One group per space with options: its fields as flags (absent unless given), plus ``--space-option``."""
    seen = set()
    for space, cls in space_option_classes().items():
        group = p.add_argument_group(f"options of space {space}")
        for f in fields(cls):
            if "help" not in f.metadata or f.name in seen:
                continue
            seen.add(f.name)
            add_field(group, f, dest=f"space_option:{f.name}", default=argparse.SUPPRESS, metavar=f.name.upper(),
                      shown=None if f.default is MISSING else f.default)
    p.add_argument("--space-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the chosen space, for a space without its own flags (repeatable; "
                        "VALUE is read as JSON when it parses, else as text)")


def space_options(args) -> dict:
    """The space options given on the command line (the flags of ``--space``'s options, ``--space-option``)."""
    given = {k.split(":", 1)[1]: v for k, v in vars(args).items() if k.startswith("space_option:")}
    owners: dict[str, list[str]] = {}  # option name -> the spaces that have it (e.g. --model: several)
    for space, cls in space_option_classes().items():
        for f in fields(cls):
            owners.setdefault(f.name, []).append(space)
    for name in given:
        if name in owners and args.space not in owners[name]:
            spaces = sorted(owners[name])
            raise SupernetError(f"{flag(name)} is an option of space {', '.join(map(repr, spaces))}, not "
                                f"{args.space!r}; add --space {spaces[0]}")
    for item in args.space_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SupernetError(f"--space-option takes KEY=VALUE, got {item!r}")
        try:
            given[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            given[key.strip().replace("-", "_")] = value
    return given


def run(args) -> None:
    from ..api import resume_training, train
    scale = _scale(args)
    if args.resume and args.init is not None:
        raise SupernetError("--init starts a new run from another run's weights, --resume continues the run in --out "
                            "from its own: give one of them")
    if args.resume:
        _refuse_options_on_resume(args)
        out = resume_training(args.out, device=None if args.device == "auto" else args.device, scale=scale)
    else:
        names = {f.name for f in fields(TrainConfig)} - {"space_options"}
        cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names}, space_options=space_options(args))
        out = train(cfg, args.out, overwrite=args.overwrite, scale=scale)
    print(f"trained: {out}")


def _scale(args):
    """The ScaleConfig of ``--workers`` (None without it); the other Ray options need it."""
    from ..training.train_config import ScaleConfig
    if args.workers is None:
        given = [name for name, value, default in (("--ray-address", args.ray_address, None),
                                                   ("--gpus-per-worker", args.gpus_per_worker, 0),
                                                   ("--max-failures", args.max_failures, 2)) if value != default]
        if given:
            raise SupernetError(f"{', '.join(given)} apply only with --workers N (training on Ray)")
        return None
    return ScaleConfig(args.workers, args.ray_address, args.gpus_per_worker, args.max_failures)


def _refuse_options_on_resume(args) -> None:
    """``--resume`` continues the saved config: a training option given with it is refused, not ignored."""
    defaults = Parser()
    add(defaults)
    defaults = defaults.parse_args([])
    given = [flag(f.name) for f in fields(TrainConfig) if f.name not in ("device", "space_options")
             and getattr(args, f.name) != getattr(defaults, f.name)]
    given += [flag(k.split(":", 1)[1]) for k in vars(args) if k.startswith("space_option:")]
    given += ["--space-option"] if args.space_option else []
    if given:
        raise SupernetError(f"--resume continues the run with its saved options; drop {', '.join(given)} "
                            "(only --device may change)")
