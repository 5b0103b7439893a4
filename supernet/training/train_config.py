"""The options of training (:class:`TrainConfig`), of scaling it out (:class:`ScaleConfig`) and of
fine-tuning (:class:`FinetuneConfig`), with their checks. Torch-free, so the CLI's parser is
built without importing torch (``supernet --help`` stays fast).

The engine's options only: a space's own options (``llm_lora``'s base model, sequence length and
text field) live in ``space_options``, checked by the space's options class
(:class:`supernet.core.options.SpaceOptions`). Device and precision are checked once, when the
front door turns them into a :class:`~supernet.core.placement.Placement`; the distillation
(``kd``) by :func:`supernet.core.task.check_kd`, as the task is built from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..core.errors import SupernetError
from ..core.options import check_number, check_numbers, flag, saved_space_options

# name -> (low, low allowed?, high, high allowed?, whole number?). Upper bounds are generous
# sanity limits: a value beyond one is a typo, not a plan.
RANGES = {
    "samples": (10, True, 10**7, True, True), "val_fraction": (0, False, 1, False, False),
    "epochs": (1, True, 10**6, True, True), "steps": (1, True, 10**9, True, True),
    "batch_size": (1, True, 10**6, True, True), "lr": (0, False, 10, True, False),
    "momentum": (0, True, 1, False, False), "weight_decay": (0, True, 1, False, False),
    "warmup_steps": (0, True, 10**9, True, True), "label_smoothing": (0, True, 1, False, False),
    "num_random": (0, True, 1000, True, True), "alpha_min": (-10, True, 0, False, False),
    "alpha_max": (0, False, 10, True, False), "alpha_clamp": (0, False, 1e6, True, False),
    "grad_clip": (0, True, 1e6, True, False), "grad_clip_value": (0, True, 1e6, True, False), "seed": (0, True, 2**32 - 1, True, True),
    "checkpoint_every": (0, True, 10**9, True, True), "calib_batches": (1, True, 10**5, True, True),
    "data_workers": (0, True, 256, True, True), "threads": (1, True, 1024, True, True),
    "grad_accum": (1, True, 10**4, True, True), "distill_weight": (0, True, 100, True, False),
    "warm_largest": (0, True, 10**9, True, True),
}
# Options whose default a space may set (``register_space(train_defaults=...)``, e.g. a language model's label
# smoothing 0 and its schedule): None in a TrainConfig means the space's default, else this one.
ENGINE_DEFAULTS = {"sampling": "sandwich", "num_random": 2, "label_smoothing": 0.1, "distill_weight": 1.0,
                   "warm_largest": 0}


@dataclass
class TrainConfig:
    data: str = "mnist1d"
    samples: int | None = None
    val_fraction: float = 0.1
    space: str = "mobilenet"
    variant: str | None = None
    init: str | None = None  # a run or checkpoint folder of the same space whose weights start this run (.init)
    epochs: int = 16
    steps: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 3e-5
    warmup_steps: int = 100
    label_smoothing: float | None = None
    sampling: str | None = None
    num_random: int | None = None
    distill_weight: float | None = None
    warm_largest: int | None = None
    share_dims: str = ""
    kd: str = "kl"
    alpha_min: float = -1.0
    alpha_max: float = 1.0
    alpha_clamp: float = 5.0
    grad_clip: float = 5.0
    grad_clip_value: float = 0.0
    grad_accum: int = 1
    seed: int = 0
    checkpoint_every: int = 500
    calib_batches: int = 8
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    data_workers: int = 2
    decoder: str = "pil"
    threads: int | None = None
    tensorboard: bool = True
    progress: bool = True
    space_options: dict = field(default_factory=dict)

    def __post_init__(self):
        """Each option of :data:`ENGINE_DEFAULTS` left None takes the space's default, else the engine's."""
        unset = [name for name in ENGINE_DEFAULTS if getattr(self, name) is None]
        if unset:
            defaults = {**ENGINE_DEFAULTS, **space_train_defaults(self.space)}
            for name in unset:
                setattr(self, name, defaults[name])

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
        choices = {"sampling": STRATEGIES, "optimizer": ("sgd", "adamw"), "decoder": ("pil", "dali")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SupernetError(f"{flag(name)} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        check_numbers(self, RANGES)
        if self.batch_size % self.grad_accum:
            raise SupernetError(f"--batch-size ({self.batch_size}) must be a multiple of --grad-accum "
                                f"({self.grad_accum}): each step splits the batch into that many micro-batches")

    @property
    def shared(self) -> tuple[str, ...]:
        """The dimension names of ``share_dims`` (comma-separated)."""
        return tuple(n.strip() for n in self.share_dims.split(",") if n.strip())

    def placement(self):
        """The :class:`~supernet.core.placement.Placement` of ``device``, ``precision`` and ``channels_last`` on
        this machine: the one place these options are checked and decided."""
        from ..core.placement import Placement
        return Placement.make(self.device, self.precision, self.channels_last)

    def worker_placement(self, gpu: bool):
        """The placement of Ray Train workers (``cuda``: each its own GPU), checked here on the driver."""
        from ..core.placement import Placement
        return Placement.for_workers(gpu, self.precision, self.channels_last)

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


def space_train_defaults(space: str) -> dict:
    """The training defaults the space ``space`` registered (none for an unknown space: ``check`` names it)."""
    from ..core.registry import get_space
    try:
        defaults = get_space(space).train_defaults
    except SupernetError:
        return {}
    return {k: v for k, v in defaults.items() if k in ENGINE_DEFAULTS}


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
        check_number("workers", self.workers, 1, True, 4096, True, True)
        check_number("gpus_per_worker", self.gpus_per_worker, 0, True, 64, True, False)
        check_number("max_failures", self.max_failures, -1, True, 10**6, True, True)
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

    kd: str | None = "kl"
    teacher: str = "largest"
    steps: int = 200
    lr: float = 0.02
    warmup_steps: int = 0
    batch_size: int | None = None
    seed: int = 1
    checkpoint_every: int = 100
    calib_batches: int = 8
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None
    data: str | None = None

    def check(self) -> None:
        from ..core.task import check_kd
        check_numbers(self, FINETUNE_RANGES)
        if self.kd is not None:  # None: the supernet's own (a run saved before finetune had --kd)
            self.kd = check_kd(self.kd)
        if self.kd == "none" and self.teacher != "largest":
            raise SupernetError(f"--teacher {self.teacher} needs a distillation: --kd none fine-tunes on the labels "
                                "alone; drop --teacher or use --kd kl or alpha")

    def placement(self):
        """The :class:`~supernet.core.placement.Placement` of ``device`` and ``precision`` (checked here)."""
        from ..core.placement import Placement
        return Placement.make(self.device, self.precision)

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        """A saved config; one saved before ``kd`` existed distilled with its supernet's divergence (None)."""
        names = {f.name for f in fields(cls)}
        return cls(**{"kd": None, **{k: v for k, v in data.items() if k in names}})


FINETUNE_RANGES = {"steps": RANGES["steps"], "lr": RANGES["lr"], "warmup_steps": RANGES["warmup_steps"],
                   "batch_size": RANGES["batch_size"], "seed": RANGES["seed"],
                   "checkpoint_every": RANGES["checkpoint_every"], "calib_batches": RANGES["calib_batches"],
                   "threads": RANGES["threads"]}
