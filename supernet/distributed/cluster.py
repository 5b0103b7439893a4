"""Connecting to Ray: a cluster at ``--ray-address``, or a private local instance.

Ray is imported here, on first use only: ``import supernet`` and local runs never load it.
``address=None`` starts a private local Ray instance sized for the job (this machine is then the
whole cluster, even when ``ray start`` runs a cluster here too); ``"auto"`` joins the cluster that ``ray start`` runs on this node;
``"HOST:6379"`` joins a cluster's head; ``"ray://HOST:10001"`` goes through Ray Client.
"""
from __future__ import annotations

import logging
import os
import sys
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


# Ray starts its workers at niceness 15: on a machine busy with other (niceness 0) work they get a few percent of a
# core, and training or a killed worker's recovery all but stops (benchmarks/bench_ray_recovery.py). A private local
# instance runs them at the user's own priority; a cluster's nodes keep their own setting
# (`ray start --system-config='{"worker_niceness": 0}'` sets it there).
LOCAL_SYSTEM_CONFIG = {"worker_niceness": 0}


def connect(address: str | None, cpus: int = 1, resources: dict | None = None):
    """The ``ray`` module, initialised once per process, quietly: the workers' and actors' own output
    goes to Ray's log files (``/tmp/ray/session_latest/logs``), not to this terminal.

    With ``address=None`` a private local instance starts (``address="local"``: never a cluster that
    ``ray start`` runs on this machine) with at least ``cpus`` CPUs (more if this machine has them; they
    may oversubscribe it), this machine's GPUs and the custom ``resources``, its workers at niceness 0
    (:data:`LOCAL_SYSTEM_CONFIG`); with an address, that
    cluster is joined (its nodes declare their own resources). A token of Ray's token authentication
    (``RAY_AUTH_TOKEN``, or ``~/.ray/auth_token`` written by ``ray start --head``) is sent when present.
    An unreachable address, or a refused token, is a :class:`SupernetError` naming the fix.
    """
    if address is not None:
        _reachable(address)
        if "ray" not in sys.modules:
            _use_auth_token()  # Ray reads its authentication mode when it is imported
    ray = import_ray()
    if ray.is_initialized():
        return ray
    quiet = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    if address is None:
        import torch
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cpus), num_gpus=torch.cuda.device_count(),
                 resources=resources or {}, _system_config=LOCAL_SYSTEM_CONFIG, **quiet)
        return ray
    try:
        with _quiet_stderr():
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SupernetError(_unreachable(address, str(exc).splitlines()[0][:200])) from None
    return ray


def _use_auth_token() -> None:
    """Send the token of Ray's token authentication to a cluster when one is at hand (Ray reads it only
    with ``RAY_AUTH_MODE=token``; a cluster without authentication ignores it)."""
    has_token = os.environ.get("RAY_AUTH_TOKEN") or os.path.exists(os.path.expanduser("~/.ray/auth_token"))
    if has_token and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"


@contextmanager
def _quiet_stderr():
    """Ray's C++ client repeats each failed connection attempt on stderr (fd 2) for many seconds: silence it."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _unreachable(address: str, why: str) -> str:
    token = os.environ.get("RAY_AUTH_TOKEN") or os.path.exists(os.path.expanduser("~/.ray/auth_token"))
    auth = ("if it uses Ray's token authentication (the default of `ray start --head` since Ray 2.52), check "
            "that RAY_AUTH_TOKEN holds the head's ~/.ray/auth_token and that RAY_AUTH_MODE=token was set before "
            "Python started" if token else
            "if it uses Ray's token authentication (the default of `ray start --head` since Ray 2.52), set "
            "RAY_AUTH_TOKEN=<the head's ~/.ray/auth_token> here")
    return (f"cannot connect to the Ray cluster at {address!r} ({why}); {auth}, or start the cluster with "
            "`ray start --head` (address HOST:6379, auto, ray://HOST:10001)")


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
    started = "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    ray = connect(address, cpus, resources)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
