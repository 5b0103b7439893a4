"""A multi-target search on Ray: evaluations on an actor pool, each target's latency on a node tagged with it.

Every target's table is checked against its own node first (``target:<name>``), and at the end the
targets' fronts are measured at once, one thread per target, each a Ray task on that target's node.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..core.placement import Placement
from .cluster import ray_session, target_resource
from .evaluate import CheckpointMaker, RayEvaluator, attempts_log, measure_on_target


def search_targets_on_ray(run, holds, evaluator, tables: dict, limits: dict, config, out, address, workers,
                          retries: int, device: str, precision: str, channels_last: bool, measure: bool):
    """``run(pool, costs)`` with a :class:`RayEvaluator` of ``evaluator``'s checkpoint; ``holds(measure_on)``
    checks every table on its target's node; then each front measured on its node, in parallel."""
    from ..hardware.front import measure_front

    def measure_on(target):
        return lambda space, archs, cfg: measure_on_target(space, archs, cfg, target)

    resources = {target_resource(t): 1 for t in tables}
    with ray_session(address, cpus=workers or 1, resources=resources) as ray:
        gpu = device.startswith("cuda") or (device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1)
        placement = Placement.for_workers(gpu, precision, channels_last)
        workers = workers or max(1, int(ray.cluster_resources().get("GPU" if gpu else "CPU", 1)))
        maker = CheckpointMaker(evaluator.folder, evaluator.calib_batches, placement, evaluator.data)
        costs, drifts = holds(measure_on)
        timeout = config.resolved().eval_timeout if config is not None else None
        pool = RayEvaluator(maker, workers, timeout=timeout, retries=retries, gpus=1 if gpu else 0,
                            on_retry=attempts_log(out / "attempts.jsonl"))
        try:
            result = run(pool, costs)
        finally:
            pool.close()
        if measure:
            with ThreadPoolExecutor(max_workers=len(tables)) as threads:
                jobs = [threads.submit(measure_front, result.targets[t], evaluator.space, tables[t], measure_on(t),
                                       budget=limits[t], drift=drifts[t]) for t in tables]
                for job in jobs:
                    job.result()
    return result
