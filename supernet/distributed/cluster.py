"""Connecting to Ray: a cluster at ``--ray-address``, or a private local instance.

Ray is imported here, on first use only: ``import supernet`` and local runs never load it.
``address=None`` starts a local Ray instance sized for the job (this machine is then the
whole cluster); ``"auto"`` joins the cluster that ``ray start`` runs on this node;
``"HOST:6379"`` joins a cluster's head; ``"ray://HOST:10001"`` goes through Ray Client.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from ..core.errors import SupernetError


def target_resource(target: str) -> str:
    """The custom Ray resource that tags the nodes of a hardware target: ``target:<name>``."""
    return f"target:{target}"


def import_ray():
    try:
        import ray
    except ImportError:
        raise SupernetError("Ray is not installed; `pip install 'ray[tune]>=2.51'` (it ships with supernet's "
                            "install_requires)") from None
    return ray


def connect(address: str | None, cpus: int = 1, resources: dict | None = None):
    """The ``ray`` module, initialised once per process.

    With ``address=None`` a local instance starts with at least ``cpus`` CPUs (more if this
    machine has them; they may oversubscribe it), this machine's GPUs and the custom ``resources``; with an address, that
    cluster is joined (its nodes declare their own resources). An unreachable address is a
    :class:`SupernetError` naming the fix.
    """
    ray = import_ray()
    if address is not None:
        _reachable(address)
    if ray.is_initialized():
        return ray
    if address is None:
        import torch
        ray.init(num_cpus=max(os.cpu_count() or 1, cpus), num_gpus=torch.cuda.device_count(), resources=resources or {},
                 include_dashboard=False, logging_level="WARNING", log_to_driver=True)
        return ray
    try:
        ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SupernetError(_unreachable(address, str(exc).splitlines()[0][:200])) from None
    return ray


def _unreachable(address: str, why: str) -> str:
    return (f"cannot connect to the Ray cluster at {address!r} ({why}); start one with `ray start --head` or pass "
            "its address (HOST:6379, auto, ray://HOST:10001)")


def _reachable(address: str, seconds: float = 5.0) -> None:
    """Fail at once on a ``HOST:PORT`` (or ``ray://HOST:PORT``) nothing listens on (Ray itself retries for minutes)."""
    import socket
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as exc:
        raise SupernetError(_unreachable(address, exc.strerror or type(exc).__name__)) from None


def check_capacity(ray, what: str, cpus: float, gpus: float = 0, resources: dict | None = None) -> None:
    """Refuse, with one line, a job the cluster can never place (instead of waiting on it forever)."""
    total = ray.cluster_resources()
    need = {"CPU": cpus, "GPU": gpus, **(resources or {})}
    short = {k: (v, total.get(k, 0)) for k, v in need.items() if v and total.get(k, 0) < v}
    if short:
        text = ", ".join(f"{v:g} {k} (the cluster has {have:g})" for k, (v, have) in short.items())
        hint = next((f"; tag a node with `ray start ... --resources '{{\"{k}\": 1}}'`" for k in short
                     if k.startswith("target:")), "")
        raise SupernetError(f"{what} needs {text}{hint}")


@contextmanager
def ray_session(address: str | None, cpus: int = 1, resources: dict | None = None):
    """:func:`connect` for the block; a local instance started here is shut down after it (one
    started by the caller, e.g. a test fixture, or a cluster is left running)."""
    ray = import_ray()
    started = not ray.is_initialized()
    connect(address, cpus, resources)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
