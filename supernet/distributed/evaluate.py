"""Real evaluations of a search in parallel on Ray: an actor pool behind ``evaluate_many``.

:class:`RayEvaluator` has the evaluator seam's contract (:mod:`supernet.evaluation.evaluators`): one
result per arch, in arch order, a :class:`~supernet.evaluation.evaluators.Failure` for a failed arch,
never an exception for one bad arch. Each of ``workers`` actors builds its evaluation function
once (``make()``: e.g. load the supernet and the validation data), then evaluates one arch at a
time. An attempt that raises, runs past ``timeout`` seconds (its actor is killed and replaced)
or loses its actor (node lost, out of memory) is tried again, at most ``retries`` more times;
the last failure is then recorded, with the status and text a local run records and the number
of attempts. Results are yielded in arch order as soon as every earlier arch has its result,
so the search records them at once; an interrupt loses only the evaluations still in flight.

Latency measurements go to a node tagged with the target's custom resource
(:func:`~supernet.distributed.cluster.target_resource`, e.g. ``target:jetson-orin``), one at a time.
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..core.arch import Arch
from ..core.errors import SupernetError
from ..core.placement import Placement, torch_threads
from ..core.registry import load_space_files, space_files
from ..evaluation.evaluators import Failure, describe
from .cluster import check_capacity, import_ray, ray_session, target_resource


class _Worker:
    """The actor: ``make()`` once, then ``evaluate(arch)`` (exceptions become a Failure, as locally), each
    with ``threads`` torch threads."""

    def __init__(self, make: Callable[[], Callable], threads: int):
        self.threads = threads
        with torch_threads(threads):
            self.fn = make()

    def ready(self) -> bool:
        return True

    def evaluate(self, arch: Arch):
        try:
            with torch_threads(self.threads):
                return self.fn(arch)
        except Exception as exc:  # noqa: BLE001  (a failed arch is data, not a crash)
            return Failure("error", describe(exc))


class RayEvaluator:
    """``evaluate_iter(archs)`` / ``evaluate_many(archs)`` on ``workers`` Ray actors (see the module doc).

    Needs ``ray.init`` done (see :func:`supernet.distributed.cluster.ray_session`). ``cpus`` / ``gpus``
    are each actor's resources (``cpus`` is also its torch thread count); ``resources`` are
    custom Ray resources each actor needs. Actors start on first use; :meth:`close` ends them.
    """

    def __init__(self, make: Callable[[], Callable], workers: int, *, timeout: float | None = None,
                 retries: int = 1, cpus: int = 1, gpus: float = 0, resources: dict | None = None,
                 on_retry: Callable[[Arch, int, Failure], None] | None = None):
        if workers < 1:
            raise SupernetError(f"--eval-workers must be >= 1, got {workers}")
        if retries < 0:
            raise SupernetError(f"retries must be >= 0, got {retries}")
        self.make, self.workers, self.timeout, self.retries = make, workers, timeout, retries
        self.options = {"num_cpus": cpus, "num_gpus": gpus, "resources": resources or {}}
        self.threads, self.ray, self.idle, self.starting = cpus, import_ray(), [], {}
        self.on_retry, self._archs = on_retry, []

    def evaluate_many(self, archs: Sequence[Arch]) -> list:
        return list(self.evaluate_iter(archs))

    def evaluate_iter(self, archs: Sequence[Arch]) -> Iterator:
        """Every arch's result, in arch order, each as soon as it and all before it are known."""
        archs = self._archs = list(archs)
        if not archs:
            return
        self._start()
        pending, attempts, results, running = deque(range(len(archs))), [0] * len(archs), {}, {}
        try:
            yield from self._loop(archs, pending, attempts, results, running)
        finally:  # the caller stopped early (an interrupt, too many failures): free the busy actors
            for _, actor, _ in running.values():
                self._replace(actor)

    def _loop(self, archs, pending: deque, attempts: list, results: dict, running: dict) -> Iterator:
        ray, done = self.ray, 0
        while done < len(archs):
            while self.idle and pending:
                i, actor = pending.popleft(), self.idle.pop()
                attempts[i] += 1
                running[actor.evaluate.remote(archs[i])] = (i, actor, time.monotonic())
            ready, _ = ray.wait(list(running) + list(self.starting), num_returns=1, timeout=self._wait(running))
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                    continue
                i, actor, _ = running.pop(ref)
                try:
                    result = ray.get(ref)
                    self.idle.append(actor)
                except ray.exceptions.RayActorError as exc:
                    result = Failure("error", f"the evaluation's Ray worker died ({type(exc).__name__})")
                    self._replace(actor)
                except ray.exceptions.RayError as exc:
                    result = Failure("error", describe(exc))
                    self.idle.append(actor)
                self._settle(i, result, attempts, pending, results)
            for ref, (i, actor, started) in list(running.items()):
                if self.timeout is not None and time.monotonic() - started > self.timeout:
                    del running[ref]
                    self._replace(actor)  # killing the actor is the only way to stop its call
                    self._settle(i, Failure("timeout", f"no result within eval_timeout={self.timeout:g} s"),
                                 attempts, pending, results)
            while done in results:
                yield results.pop(done)
                done += 1

    def _settle(self, i: int, result, attempts: list, pending: deque, results: dict) -> None:
        """Keep an arch's result, or queue it again (first in line) while it has retries left (``on_retry`` is
        told of each failed attempt that is tried again)."""
        if isinstance(result, Failure) and attempts[i] <= self.retries:
            if self.on_retry is not None:
                self.on_retry(self._archs[i], attempts[i], result)
            pending.appendleft(i)
        elif isinstance(result, Failure) and attempts[i] > 1:
            results[i] = Failure(result.status, f"{result.error} [failed {attempts[i]} of {attempts[i]} attempts "
                                                "on Ray]")
        else:
            results[i] = result

    def _wait(self, running: dict) -> float | None:
        if self.timeout is None or not running:
            return None
        oldest = min(started for _, _, started in running.values())
        return max(0.0, self.timeout - (time.monotonic() - oldest)) + 0.01

    # -- actors -----------------------------------------------------------------------
    def _start(self) -> None:
        """Start the actors (once) and wait until each has built its evaluation function."""
        if self.idle or self.starting:
            return
        check_capacity(self.ray, f"--eval-workers {self.workers}", self.workers * self.options["num_cpus"],
                       self.workers * self.options["num_gpus"],
                       {k: v * self.workers for k, v in self.options["resources"].items()})
        for _ in range(self.workers):
            self._spawn()
        while self.starting:
            ready, _ = self.ray.wait(list(self.starting), num_returns=1)
            self._started(ready[0])

    def _spawn(self) -> None:
        if not hasattr(self, "_actor_class"):
            self._actor_class = self.ray.remote(_Worker)
        actor = self._actor_class.options(**self.options).remote(self.make, self.threads)
        self.starting[actor.ready.remote()] = actor

    def _started(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self.close()
            raise SupernetError(f"a Ray evaluation worker could not start: {_first_line(exc)}") from None
        self.idle.append(actor)

    def _replace(self, actor) -> None:
        self.ray.kill(actor)
        self._spawn()

    def close(self) -> None:
        """End every actor (the cluster keeps running)."""
        for actor in [*self.idle, *self.starting.values()]:
            self.ray.kill(actor)
        self.idle, self.starting = [], {}


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, SupernetError):
        return str(cause).splitlines()[0]
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


class CheckpointMaker:
    """``make()`` for :class:`RayEvaluator`: a :class:`~supernet.evaluation.checkpoint.CheckpointEvaluator` of a
    checkpoint whose files travel with it (no shared filesystem needed), data and BN batches loaded at once,
    computing on ``placement`` (decided once, on the driver)."""

    def __init__(self, folder: str | os.PathLike, calib_batches: int, placement: Placement, data: str | None = None):
        folder = Path(folder)
        self.files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name in ("weights.safetensors", "config.json")}
        self.calib_batches, self.placement, self.data = calib_batches, placement, data  # data: a --data value
        self.space_files = space_files()  # a space from a .py file: imported on the worker before the checkpoint loads

    def __call__(self):
        from ..evaluation.checkpoint import CheckpointEvaluator
        load_space_files(self.space_files)
        folder = Path(tempfile.mkdtemp(prefix="supernet-ckpt-"))
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        evaluator = CheckpointEvaluator(folder, self.calib_batches, self.placement, self.data)
        evaluator.load_data()
        return evaluator


@dataclass(frozen=True)
class RaySearch:
    """Where a search's real evaluations run on Ray: the cluster at ``address`` (None: a local Ray instance),
    ``workers`` actors (None: one per GPU, or CPU, of the cluster), each failed attempt tried again ``retries``
    times, an attempt past ``timeout`` seconds failed; latency measured on a node tagged ``target:<target>``.
    ``gpu``: the actors compute on GPUs (True), CPUs (False) or on GPUs when the cluster has one (None, the
    front door's ``--device auto``)."""

    address: str | None = None
    workers: int | None = None
    retries: int = 1
    timeout: float | None = None
    target: str | None = None
    gpu: bool | None = None


def search_on_ray(run, evaluator, placement: Placement, ray_search: RaySearch, *, table=None, hold=None,
                  budget: float | None = None, retry_log: Callable | None = None):
    """``run(pool)``: the search with a :class:`RayEvaluator` of ``evaluator``'s checkpoint. When a latency
    ``table`` is used, ``hold(measure)`` first checks it against the target's node (its drift), and the
    front's latency is measured there at the end, against ``budget``.

    ``placement`` is the actors' (:meth:`~supernet.core.placement.Placement.for_workers`, decided by the front
    door: precision, memory format, ``cpu_threads`` torch threads and CPUs per actor); it travels to every
    actor as it is, bound to ``cuda`` when ``ray_search.gpu`` is None and the cluster has a GPU. ``workers``
    defaults to one per GPU (or CPU). ``retry_log(arch, attempt, failure)`` hears of every failed attempt that
    is tried again."""
    from ..hardware.front import measure_front
    target, threads = ray_search.target, placement.cpu_threads or 1
    on_target = lambda s, a, cfg: measure_on_target(s, a, cfg, target)  # noqa: E731
    with ray_session(ray_search.address, cpus=(ray_search.workers or 1) * threads,
                     resources={target_resource(target): 1} if target else None) as ray:
        if ray_search.gpu is None and ray.cluster_resources().get("GPU", 0) >= 1:
            placement = placement.bound("cuda")
        gpu = placement.device.type == "cuda"
        workers = ray_search.workers or max(1, int(ray.cluster_resources().get("GPU" if gpu else "CPU", 1)) //
                                            (1 if gpu else threads))
        maker = CheckpointMaker(evaluator.folder, evaluator.calib_batches, placement, evaluator.data)
        drift = hold(on_target) if table is not None and hold is not None else None
        pool = RayEvaluator(maker, workers, timeout=ray_search.timeout, retries=ray_search.retries, cpus=threads,
                            gpus=1 if gpu else 0, on_retry=retry_log)
        try:
            result = run(pool)
        finally:
            pool.close()
        if table is not None:
            if drift is not None and drift.status != "steady":
                result.warnings.insert(0, drift.message)
            measure_front(result, evaluator.space, table, on_target, budget=budget, drift=drift)
    return result


def measure_on_target(space, archs: list[Arch], cfg, target: str) -> list[dict]:
    """:func:`supernet.hardware.rounds.measure_subnets` run as one Ray task on a node tagged ``target:<target>``
    (the whole resource: nothing else measures there meanwhile). A space from a ``.py`` file (``SUPERNET_SPACES``)
    travels pickled with that file's path: the task imports the file first (it must exist at the same path on
    the node), then unpickles the space."""
    ray = import_ray()
    resource = target_resource(target)
    check_capacity(ray, f"measuring latency on target {target!r}", 0, 0, {resource: 1})
    task = ray.remote(_measure_there).options(num_cpus=1, resources={resource: 1})
    return ray.get(task.remote(space_files(), pickle.dumps((space, archs, cfg))))


def _measure_there(files: list[str], payload: bytes) -> list[dict]:
    """The task of :func:`measure_on_target`: import the space files, unpickle, measure."""
    from ..hardware.rounds import measure_subnets
    load_space_files(files)
    return measure_subnets(*pickle.loads(payload))


def attempts_log(path: Path) -> Callable[[Arch, int, Failure], None]:
    """``on_retry`` for :class:`RayEvaluator`: one JSON line per failed attempt tried again, appended to ``path``
    (``attempts.jsonl`` of a search run: the trace of what Ray retried, which ``evaluations.csv`` does not keep)."""
    def record(arch: Arch, attempt: int, failure: Failure) -> None:
        line = {"arch": arch.to_dict(), "attempt": attempt, "status": failure.status, "error": failure.error,
                "time": round(time.time(), 3)}
        with open(path, "a") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
    return record
