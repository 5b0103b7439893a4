"""SIGINT and SIGTERM: one helper for every long-running command (training, fine-tuning, search)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def on_signals(handler):
    """``handler(signum, frame)`` for SIGINT and SIGTERM inside the block, the previous handlers after it
    (also where SIGINT was inherited as ignored, as by a job started with ``&`` from a script). Outside
    the main thread, where signals cannot be handled, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def interruptible():
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` inside the block."""
    with on_signals(_raise):
        yield


@contextmanager
def deferred_interrupts():
    """SIGINT / SIGTERM arriving inside the block take effect, as ``KeyboardInterrupt``, when it ends
    (a step's log line and checkpoint are written whole)."""
    caught = []
    with on_signals(lambda signum, frame: caught.append(signum)):
        yield
    if caught:
        raise KeyboardInterrupt
