"""The options of training (:class:`TrainConfig`), of scaling it out (:class:`ScaleConfig`) and of
fine-tuning (:class:`FinetuneConfig`). Each field holds its default, its check (a named range or its
choices) and its help (:func:`supernet.core.options.option`); the CLI builds its flags from them.
Torch-free, and free of the space registry, so the CLI's parser is built without importing torch
(``supernet --help`` stays fast) and a plain config is built without importing any space.

The engine's options only: a space's own options (``llm_lora``'s base model, sequence length and
text field) live in ``space_options``, checked by the space's options class
(:class:`supernet.core.options.SpaceOptions`). Device, precision and threads are checked once, when
the front door turns them into a :class:`~supernet.core.placement.Placement`; the distillation
(``kd``) by :func:`supernet.core.task.check_kd`, as the task is built from it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..core.errors import SupernetError
from ..core.options import (
    BATCH,
    CALIB_BATCHES,
    CHANNELS_LAST_HELP,
    CLIP,
    DEVICE_HELP,
    FRACTION,
    LEARNING_RATE,
    NONNEGATIVE_STEPS,
    OPEN_UNIT,
    PRECISION_HELP,
    SEED,
    STEPS,
    THREADS_HELP,
    Range,
    check_fields,
    check_number,
    count,
    flag,
    option,
    saved_space_options,
)

# Options whose default a space may set (``register_space(train_defaults=...)``, e.g. a language model's label
# smoothing 0 and its schedule): None in a TrainConfig means the space's default, else this one; filled in by
# :func:`with_space_defaults` where the space is resolved (``training.setup``), not when a config is built.
ENGINE_DEFAULTS = {"sampling": "sandwich", "num_random": 2, "label_smoothing": 0.1, "distill_weight": 1.0,
                   "warm_largest": 0}
SAMPLING_HELP = ("sandwich (largest+smallest+N random, in-place KD) | uniform (one random arch, SPOS) | "
                 "flops-even (sandwich, random archs drawn evenly over the FLOPs range) | "
                 "worst-up (sandwich; each random arch the hardest on the batch of 3 near one FLOPs target) | "
                 "largest-random (largest + N random, in-place KD, no smallest)")
KD_HELP = ("how the students learn from the largest: kl (KL; wins on bench_trust, see README) | alpha (AlphaNet's "
           "adaptive alpha-divergence) | none (every arch on the labels) | a schedule KIND:F,...,KIND: KIND until "
           "the fraction F of the steps, then the next, e.g. kl:0.3,alpha (KL for the first 30%, then alpha) or "
           "none:0.3,alpha")


@dataclass
class TrainConfig:
    """The engine's training options, each field with its default, its check and its help (``supernet train``'s
    flags are built from them)."""

    data: str = option("mnist1d", help=(
        "mnist1d | digits | mnist | path/to/file.npz | imagefolder:PATH (train/, optional val/ and test/, "
        "one subfolder per class) | packed:PATH (an image folder packed by `supernet data pack`: no decoding, "
        "augmented in batch on --device) | text:PATH (a .txt or .jsonl file, or a folder of them; with --model)"))
    samples: int | None = option(None, help="MNIST-1D examples to generate (train+test, 80/20); default 10000",
                                 range=count(10, 10**7))
    val_fraction: float = option(0.1, range=OPEN_UNIT, help="share of the non-test examples held out as the "
                                 "validation split that search scores on")
    space: str = option("mobilenet", help="registered search space (see `supernet spaces`)")
    variant: str | None = option(None, help="space variant; default: the space chooses one for the data (see "
                                 "`supernet spaces`)")
    init: str | None = option(None, help=(
        "start from the weights of RUN (a run or checkpoint folder of the same space, ours or imported, e.g. by "
        "`supernet import ofa`) instead of a fresh initialisation; the variant is the init's, and the classifier is "
        "replaced (initialised fresh) when the data's number of classes differs"))
    epochs: int = option(16, range=count(1, 10**6), help="training epochs")
    steps: int | None = option(None, range=STEPS, help="total optimizer steps (overrides --epochs)")
    batch_size: int = option(128, range=BATCH, help="examples per step")
    optimizer: str = option("sgd", choices=("sgd", "adamw"), help="sgd (Nesterov) | adamw")
    lr: float = option(0.2, range=LEARNING_RATE, help="peak learning rate")
    momentum: float = option(0.9, range=FRACTION, help="SGD momentum")
    weight_decay: float = option(3e-5, range=FRACTION, help="weight decay (not on biases or norms)")
    warmup_steps: int = option(100, range=NONNEGATIVE_STEPS, help="linear warm-up steps before the cosine decay")
    label_smoothing: float | None = option(None, range=FRACTION,
                                           help="label smoothing of the largest arch's cross-entropy")
    sampling: str | None = option(None, help=SAMPLING_HELP)  # choices: training.sampling.STRATEGIES (check)
    num_random: int | None = option(None, range=count(0, 1000), help="random archs per sandwich step")
    distill_weight: float | None = option(None, range=Range(0, 100), help="weight of each distilled arch's loss "
                                          "beside the largest's label loss (L_largest + w sum L_k)")
    warm_largest: int | None = option(None, range=NONNEGATIVE_STEPS, help="first steps that train the largest "
                                      "arch alone, on the labels, before the sampling rule")
    share_dims: str = option("", help="comma-separated single-value dims drawn once per step for every arch of it, "
                             "e.g. r (OFA's per-batch resolution); default: each arch draws its own")
    kd: str = option("kl", help=KD_HELP)  # checked by core.task.check_kd
    alpha_min: float = option(-1.0, range=Range(-10, 0, True, False), help="negative alpha of the adaptive divergence")
    alpha_max: float = option(1.0, range=Range(0, 10, False, True), help="positive alpha")
    alpha_clamp: float = option(5.0, range=Range(0, 1e6, False, True), help="clamp of the importance ratio w^alpha")
    grad_clip: float = option(5.0, range=CLIP, help="max gradient norm (0 = off)")
    grad_clip_value: float = option(0.0, range=CLIP, help="clip each gradient element to [-V, V] before the norm "
                                    "clip (AlphaNet uses 1.0; 0 = off)")
    grad_accum: int = option(1, range=count(1, 10**4), help="micro-batches per optimizer step (gradient "
                             "accumulation; divides --batch-size)")
    seed: int = option(0, range=SEED, help="seed of data order, arch draws and init")
    checkpoint_every: int = option(500, range=NONNEGATIVE_STEPS, help="steps between checkpoints (0 = end only)")
    calib_batches: int = option(8, range=CALIB_BATCHES, help="batches of 256 training inputs for BN recalibration")
    device: str = option("auto", help=DEVICE_HELP)  # checked by core.placement.Placement.make
    precision: str = option("fp32", help=PRECISION_HELP)  # checked by core.placement.Placement.make
    channels_last: bool = option(False, help=CHANNELS_LAST_HELP)
    data_workers: int = option(2, range=count(0, 256), help="loader processes for imagefolder data (0 = in the "
                               "main process)")
    decoder: str = option("pil", choices=("pil", "dali"), help="how imagefolder JPEGs are decoded: pil (loader "
                          "processes) | dali (NVIDIA DALI on the GPU; pip install nvidia-dali-cuda120 or -cuda130)")
    threads: int | None = option(None, help=THREADS_HELP)  # checked by core.placement.Placement.make
    tensorboard: bool = option(True, help="write TensorBoard events")
    progress: bool = option(True, help="show a progress bar")
    space_options: dict = option(default_factory=dict, cli=False,
                                 help="the space's own options (its flags below, or --space-option KEY=VALUE)")

    def check(self) -> None:
        """The engine's options (nothing is written before this passes)."""
        from ..core.task import check_kd
        from .sampling import STRATEGIES
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("str", "str | None") and not (isinstance(value, str) or (value is None and "None" in f.type)):
                raise SupernetError(f"{flag(f.name)} must be text, got {value!r}")
        if not isinstance(self.space_options, dict):
            raise SupernetError(f"space_options must be a dict of the space's options, got {self.space_options!r}")
        self.kd = check_kd(self.kd)
        if self.sampling is not None and self.sampling not in STRATEGIES:
            raise SupernetError(f"--sampling must be one of {list(STRATEGIES)}, got {self.sampling!r}")
        check_fields(self)
        if self.batch_size % self.grad_accum:
            raise SupernetError(f"--batch-size ({self.batch_size}) must be a multiple of --grad-accum "
                                f"({self.grad_accum}): each step splits the batch into that many micro-batches")

    @property
    def shared(self) -> tuple[str, ...]:
        """The dimension names of ``share_dims`` (comma-separated)."""
        return tuple(n.strip() for n in self.share_dims.split(",") if n.strip())

    def placement(self):
        """The :class:`~supernet.core.placement.Placement` of ``device``, ``precision``, ``channels_last`` and
        ``threads`` on this machine: the one place these options are checked and decided."""
        from ..core.placement import Placement
        return Placement.make(self.device, self.precision, self.channels_last, self.threads)

    def worker_placement(self, gpu: bool):
        """The placement of Ray Train workers (``cuda``: each its own GPU; ``threads``, default 1, each),
        checked here on the driver."""
        from ..core.placement import Placement
        return Placement.for_workers(gpu, self.precision, self.channels_last, self.threads)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """A saved config; a run saved before ``space_options`` existed has its language-model options moved there,
        and options it did not record take the engine's defaults of that time (not the space's of today)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["space_options"] = saved_space_options(data)
        for name, default in ENGINE_DEFAULTS.items():  # a run saved before the option existed trained without it
            values.setdefault(name, default)
        return cls(**values)


def with_space_defaults(cfg: TrainConfig, space_defaults: dict | None = None) -> TrainConfig:
    """``cfg`` with each option of :data:`ENGINE_DEFAULTS` it left None set to the space's default
    (``space_defaults``, what the space registered as ``train_defaults``), else the engine's. Called where
    the space is resolved (:func:`supernet.training.setup.resolved_config`); a config already filled is
    returned as it is."""
    defaults = {**ENGINE_DEFAULTS, **{k: v for k, v in (space_defaults or {}).items() if k in ENGINE_DEFAULTS}}
    unset = {name: defaults[name] for name in ENGINE_DEFAULTS if getattr(cfg, name) is None}
    return replace(cfg, **unset) if unset else cfg


@dataclass
class ScaleConfig:
    """Where a training run computes when it scales out: ``workers`` Ray Train workers (DDP, one
    process each, ``--threads`` CPUs and torch threads each, default 1; ``gpus_per_worker`` GPUs: 0 trains on
    CPUs with gloo, 1 on one GPU each with NCCL) on the cluster at ``address`` (None: a local Ray
    instance on this machine). A worker failure restarts every worker from the latest checkpoint,
    at most ``max_failures`` times. It changes where the run computes, not what it computes; it is
    recorded in ``config.json`` under ``ray`` but not required to resume."""

    workers: int
    address: str | None = None
    gpus_per_worker: float = 0
    max_failures: int = 2

    def check(self, cfg: TrainConfig) -> None:
        check_number("workers", self.workers, count(1, 4096))
        check_number("gpus_per_worker", self.gpus_per_worker, Range(0, 64))
        check_number("max_failures", self.max_failures, count(-1, 10**6))
        if self.gpus_per_worker and cfg.device == "cpu":
            raise SupernetError("--gpus-per-worker > 0 trains on GPUs; drop --device cpu (or --gpus-per-worker)")
        if not self.gpus_per_worker and cfg.device.startswith("cuda"):
            raise SupernetError(f"--device {cfg.device} with --workers needs --gpus-per-worker 1 (Ray gives each "
                                "worker its GPU)")
        if cfg.device.startswith("cuda:"):
            raise SupernetError("with --workers, Ray assigns each worker its GPU: use --device cuda, not "
                                f"{cfg.device}")
        if cfg.batch_size % self.workers:
            raise SupernetError(f"--batch-size {cfg.batch_size} (the global batch) must split evenly across "
                                f"--workers {self.workers}; use a multiple of {self.workers}")
        if (cfg.batch_size // self.workers) % cfg.grad_accum:
            raise SupernetError(f"each worker's {cfg.batch_size // self.workers} examples per step must split into "
                                f"--grad-accum {cfg.grad_accum} equal micro-batches; use a --batch-size that is a "
                                f"multiple of {self.workers * cfg.grad_accum}")


@dataclass
class FinetuneConfig:
    """Options of ``supernet finetune``: K steps of ``kd`` (a ``--kd`` value: ``kl``, ``alpha``, ``none``
    for the labels alone, or a schedule) from ``teacher`` (``largest``: the supernet's largest
    subnet; or a path to a trained run or export of the same space, variant and data). ``data`` (an
    ``imagefolder:PATH`` / ``packed:PATH`` value) replaces the supernet's own training data (needed by a
    run of imported weights; default: the ``--data`` the export was recalibrated on, if any).

    The recipe not named here (optimizer, momentum, weight decay, clipping, label smoothing,
    alphas) is the supernet's own; ``batch_size`` None means the supernet's.
    """

    kd: str | None = option("kl", help="kl | alpha (AlphaNet's adaptive alpha-divergence) | none (labels only) | "
                            "a schedule as `supernet train --kd` takes, e.g. kl:0.3,alpha")  # core.task.check_kd
    teacher: str = option("largest", metavar="largest|PATH", help="largest (the supernet's largest subnet, BN "
                          "recalibrated) or a supernet run, checkpoint or export folder of the same space, variant "
                          "and data")
    steps: int = option(200, range=STEPS, help="optimizer steps")
    lr: float = option(0.02, range=LEARNING_RATE, help="peak learning rate (cosine decay to 0)")
    warmup_steps: int = option(0, range=NONNEGATIVE_STEPS, help="linear warm-up steps")
    batch_size: int | None = option(None, range=BATCH, help="examples per step (default: the supernet's)")
    seed: int = option(1, range=SEED, help="seed of the data order")
    checkpoint_every: int = option(100, range=NONNEGATIVE_STEPS, help="steps between checkpoints (0 = end only)")
    calib_batches: int = option(8, range=CALIB_BATCHES, help="batches of 256 training inputs for BN "
                                "recalibration (teacher and result)")
    device: str = option("auto", help=DEVICE_HELP)  # checked by core.placement.Placement.make
    precision: str = option("fp32", help=PRECISION_HELP)  # checked by core.placement.Placement.make
    threads: int | None = option(None, help=THREADS_HELP)  # checked by core.placement.Placement.make
    data: str | None = option(None, help="imagefolder:PATH | packed:PATH: the data the teacher and the result are "
                              "recalibrated on, trained on too (default: the --data the export was recalibrated on)")

    def check(self) -> None:
        from ..core.task import check_kd
        check_fields(self)
        if self.kd is not None:  # None: the supernet's own (a run saved before finetune had --kd)
            self.kd = check_kd(self.kd)
        if self.kd == "none" and self.teacher != "largest":
            raise SupernetError(f"--teacher {self.teacher} needs a distillation: --kd none fine-tunes on the labels "
                                "alone; drop --teacher or use --kd kl or alpha")

    def placement(self):
        """The :class:`~supernet.core.placement.Placement` of ``device``, ``precision`` and ``threads`` (checked
        here)."""
        from ..core.placement import Placement
        return Placement.make(self.device, self.precision, threads=self.threads)

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        """A saved config; one saved before ``kd`` existed distilled with its supernet's divergence (None)."""
        names = {f.name for f in fields(cls)}
        return cls(**{"kd": None, **{k: v for k, v in data.items() if k in names}})

