"""``supernet search``: predictor-guided NSGA-II over a trained supernet, under budgets, printed as its front."""
from __future__ import annotations

import argparse
import json

from ..core.errors import SupernetError
from .common import CALIB_BATCHES, WORKERS, Parser, add_data, add_placement, whole

HELP = "predictor-guided NSGA-II search under FLOPs / params / latency budgets"
EXAMPLES = """examples:
  supernet search runs/mnist1d --objectives accuracy,flops --max-flops 2M --evaluations 200 --out runs/search-2m
  supernet search runs/mnist1d --objectives accuracy,flops,params --max-params 150K --evaluations 100
  supernet search runs/mnist1d --strategy nsga2 --evaluations 200     # plain NSGA-II, no predictor
  supernet search --resume --out runs/search-2m                       # continue an interrupted search
  supernet search runs/llm --objectives loss,params --max-params 2M --evaluations 60   # LLM: best under 2 M params
  supernet search runs/mnist1d --targets cpu,onnxruntime-cpu --max-latency-ms cpu=3,onnxruntime-cpu=1.5 \
      --evaluations 150 --out runs/search-2dev        # one search, one pick per device (targets/<name>/, picks.md)
  supernet search runs/mnist1d --max-flops 2M --eval-workers 2        # evaluations on 2 local Ray actors
  supernet search runs/mnist1d --max-flops 2M --ray-address auto --eval-workers 16   # on a Ray cluster
  supernet search runs/ofa-w10 --data imagefolder:~/imagenet --max-latency-ms 12 --target onnxruntime-cpu \
      --compare ofa:all            # an imported OFA run; OFA's own picks under the budget in the same table
  supernet search runs/ofa-w10 --data packed:~/imagenet-packed --max-flops 150M \
      --compare ofa:note10_lat-8ms_top1-71.4_finetune-25,ofa:pixel1_lat-28ms_top1-73.3_finetune-25
numbers take K, M or G suffixes (x1e3, x1e6, x1e9); FLOPs count multiply-adds (MACs)."""


def add(p) -> None:
    from ..nas.search_config import SearchConfig
    d = SearchConfig()
    p.add_argument("checkpoint", nargs="?", help="training run folder or checkpoint folder (not with --resume)")
    p.add_argument("--objectives", help="comma-separated: accuracy (maximised), loss (language models), flops, "
                   "params, latency (minimised); for a language model accuracy means its validation loss (default: accuracy,flops)")
    p.add_argument("--max-flops", help="FLOPs (MACs) budget, e.g. 20M")
    p.add_argument("--max-params", help="parameter budget, e.g. 500K")
    p.add_argument("--max-latency-ms", help="latency budget in ms on --target (uses the table of `supernet latency "
                   "build`; the front is then measured for real); with several targets one number for all or "
                   "TARGET=MS,... per target")
    p.add_argument("--target", action="append", help="hardware target of latency: cpu | onnxruntime-cpu | onnxruntime-cpu-int8 | "
                   "openvino-cpu | openvino-cpu-int8 | executorch-xnnpack | cuda | cuda-graph | ort-cuda | ort-tensorrt "
                   "(an -int8 target scores each arch's int8 model); repeat it (or use --targets) to search for several at once")
    p.add_argument("--targets", help="comma-separated targets searched at once: accuracy evaluated once per arch, "
                   "one front, pick and export folder per target (RUN/targets/<name>/) and picks.md comparing them")
    p.add_argument("--latency-mode", default="forward", choices=("forward", "generate"),
                   help="forward: one call on an example batch | generate (LLM spaces): a prompt of --prefill-tokens, "
                        "then --decode-tokens new tokens with the KV cache (default: %(default)s)")
    p.add_argument("--prefill-tokens", type=whole(1, 10**6), default=128, help="generate: prompt tokens (default: %(default)s)")
    p.add_argument("--decode-tokens", type=whole(1, 10**6), default=32, help="generate: new tokens (default: %(default)s)")
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
    add_data(p, "; a resumed search keeps its own")
    p.add_argument("--compare", metavar="NAME[,NAME...]",
                   help="archs evaluated after the search with its evaluator and costs (latency measured like the "
                   "front) and listed beside its picks (compare.json): ofa:ID (OFA's own pick), ofa:all (each OFA pick "
                   "of the run's net that meets the budgets), largest, an arch JSON file")
    add_placement(p)  # --device, --precision, --channels-last, --threads (also the latency clock's without a table)
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
    from ..nas.search_config import SearchConfig
    from ..nas.quantities import parse_quantity
    budgets = {name: parse_quantity(getattr(args, f"max_{name}"), f"--max-{name}")
               for name in ("flops", "params") if getattr(args, f"max_{name}") is not None}
    if args.max_latency_ms is not None and not _several(args):
        budgets["latency"] = parse_quantity(args.max_latency_ms, "--max-latency-ms")
    evaluations = parse_quantity(args.evaluations, "--evaluations")
    if evaluations != int(evaluations):
        raise SupernetError(f"--evaluations must be a whole number, got {args.evaluations!r}")
    objectives = tuple(args.objectives.split(",")) if args.objectives else SearchConfig().objectives
    return SearchConfig(objectives=objectives, budgets=budgets, evaluations=int(evaluations),
                        initial=args.initial, per_round=args.per_round, uncertain=args.uncertain,
                        generations=args.generations, population=args.population, predictor=args.predictor,
                        strategy=args.strategy, seed=args.seed, target=None if _several(args) else _targets(args)[0]
                        if _targets(args) else None, eval_timeout=args.eval_timeout,
                        max_failures=args.max_failures, latency_mode=args.latency_mode,
                        prefill_tokens=args.prefill_tokens, decode_tokens=args.decode_tokens)


CLI_OPTIONS = {"budgets.flops": "--max-flops", "budgets.params": "--max-params", "budgets.latency": "--max-latency-ms",
               **{f: "--" + f.replace("_", "-") for f in ("evaluations", "initial", "per_round", "uncertain", "generations",
                                                          "population", "strategy", "eval_timeout", "max_failures",
                                                          "latency_mode", "prefill_tokens", "decode_tokens", "target")}}


def _targets(args) -> list[str]:
    """Every target named by --target (repeatable) and --targets, in order, each once."""
    from ..api_targets import parse_targets
    given = list(args.target or []) + ([args.targets] if args.targets else [])
    return parse_targets(given) if given else []


def _several(args) -> bool:
    return bool(args.targets) or len(args.target or []) > 1


SEARCH_FLAGS = ("objectives", "max_flops", "max_params", "max_latency_ms", "target", "evaluations", "initial",
                "per_round", "uncertain", "generations", "population", "predictor", "strategy", "seed", "eval_timeout",
                "max_failures", "latency_mode", "prefill_tokens", "decode_tokens")


def _defaults_only(args) -> bool:
    """True when no search option differs from its default (a plain ``--resume``)."""
    defaults = Parser()
    add(defaults)
    defaults = defaults.parse_args([])
    return all(getattr(args, k) == getattr(defaults, k) for k in SEARCH_FLAGS)


def _number(v) -> str:
    from ..nas.quantities import format_quantity
    return format_quantity(v) if abs(v) >= 1000 else f"{v:.4g}"


def _measured(row: dict, flag: bool = True) -> str:
    """`` measured M ms (p10-p90 A-B[, under budget in S% of N rounds])[ [FLAG]]``, or "" (no flag when
    not ``flag``: a pick whose rule ignores the budget)."""
    if "latency_measured_ms" not in row:
        return ""
    lo, hi = row["latency_spread_ms"]
    text = f"  measured {row['latency_measured_ms']:.4g} ms (p10-p90 {lo:.4g}-{hi:.4g}"
    if "latency_under_budget" in row:
        text += f", under budget in {100 * row['latency_under_budget']:.0f}% of {row['latency_rounds']} rounds"
    status = row.get("latency_vs_budget", "under")
    return text + ")" + ("" if status == "under" or not flag else f" [{status.upper()} BUDGET]")


def _print_search(result) -> None:
    skip = ("index", "round", "baseline", "status", "error", "feasible", "is_pareto", "arch")
    for row in result.front:
        metrics = "  ".join(f"{k}={_number(v)}" for k, v in row.items()
                            if k not in skip and not k.startswith("latency_") and isinstance(v, (int, float)))
        print(f"front  {metrics}{_measured(row)}  {json.dumps(row['arch'], separators=(',', ':'))}")
    from ..hardware.front import UNBOUND
    for how, row in result.picks.items():
        if row:
            print(f"pick   {how}: evaluation {row['index']}{_measured(row, how not in UNBOUND)}")
    drift = (result.latency_check or {}).get("drift")
    if drift and drift["status"] == "steady":
        print(f"latency table held: {drift['message']}")
    failed = f" ({result.failures} failed, see evaluations.csv)" if result.failures else ""
    point = (result.reference or {}).get("point")
    ref = (" (objectives scaled so that the baselines span 0..1; reference point " +
           ", ".join(f"{k}={_number(v)}" for k, v in point.items()) + ")") \
        if point else ""
    print(f"hypervolume {result.hypervolume:.4f}{ref} over {len(result.evaluations)} real evaluations{failed}")
    _print_compare(result)
    for note in result.warnings:
        print(f"warning: {note}")
    print(f"searched: {result.run_dir}")


def _print_compare(result) -> None:
    """With ``--compare``: one table of the picks and the named archs, the same metrics for each."""
    if not result.anchors:
        return
    rows = [(f"pick {how}", row, how not in ("best-accuracy",)) for how, row in result.picks.items() if row]
    rows += [(row["name"], row, True) for row in result.anchors]
    names = [k for k in result.anchors[0] if isinstance(result.anchors[0][k], (int, float)) and
             not isinstance(result.anchors[0][k], bool) and not k.startswith("latency_")]
    width = max(len(label) for label, _, _ in rows)
    for label, row, bound in rows:
        metrics = "  ".join(f"{k}={_number(row[k])}" for k in names if k in row)
        over = "" if row.get("within_budget", True) else "  [OVER BUDGET]"
        print(f"compare  {label:<{width}}  {metrics}{_measured(row, bound)}{over}")


def run(args) -> None:
    import warnings

    from ..api import search
    if _several(args):
        return _run_targets(args)
    config = None if args.resume and _defaults_only(args) else _search_config(args)
    with warnings.catch_warnings():  # printed as one `warning:` line each by _print_search
        warnings.simplefilter("ignore", UserWarning)
        _print_search(search(args.checkpoint, config, args.out, resume=args.resume, overwrite=args.overwrite,
                             progress=args.progress, tensorboard=args.tensorboard, calib_batches=args.calib_batches,
                             latency_table=args.latency_table, option_names=CLI_OPTIONS, device=args.device,
                             precision=args.precision, channels_last=args.channels_last, threads=args.threads,
                             ray_address=args.ray_address, eval_workers=args.eval_workers,
                             eval_retries=args.eval_retries, data=args.data,
                             compare=args.compare.split(",") if args.compare else ()))


def _run_targets(args) -> None:
    """``--targets A,B``: one search for every target; prints each target's pick and the comparison table."""
    import warnings

    from ..api_targets import search_targets
    if args.strategy == "nsga2":
        raise SupernetError("--targets searches are predictor-guided or random; drop --strategy nsga2")
    config = None if args.resume else _search_config(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = search_targets(args.checkpoint, _targets(args), config, args.out, budgets=args.max_latency_ms,
                                resume=args.resume, overwrite=args.overwrite, progress=args.progress,
                                tensorboard=args.tensorboard, calib_batches=args.calib_batches,
                                option_names=CLI_OPTIONS, device=args.device, precision=args.precision,
                                channels_last=args.channels_last, ray_address=args.ray_address,
                                eval_workers=args.eval_workers, eval_retries=args.eval_retries,
                                threads=args.threads, data=args.data)
    from ..nas.targets import markdown_table
    for t, res in result.targets.items():
        row = res.picks.get("max-accuracy-under-budget")
        where = f"evaluation {row['index']}{_measured(row)}" if row else "none meets the budget"
        print(f"target {t}: front of {len(res.front)}, pick max-accuracy-under-budget: {where}  ({res.run_dir})")
        for note in res.warnings:
            print(f"warning: {t}: {note}")
    print(markdown_table(result.table, list(result.targets)), end="")
    print(f"{result.accuracy_evaluations} accuracy evaluations shared by {len(result.targets)} targets; "
          f"export a pick with `supernet export {result.run_dir}/targets/<target>`")
    print(f"searched: {result.run_dir}")
