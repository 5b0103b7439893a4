"""An exclusive claim on an output folder: one writer at a time, never left stuck by a killed one.

The claim is an ``fcntl.flock`` on ``FOLDER/.claim``, a file that also records the holder (pid,
host, start time, command). The kernel drops the lock when its process ends however it ends
(SIGKILL included), so a folder is free again as soon as its writer is gone; a leftover ``.claim``
file is then only a note. A second process asking while the holder lives is refused in one line
naming the folder and the holder. Within one process a folder claimed twice is the same claim.

    claim(folder)    -> the folder is ours until release(folder) or the end of the process
    release(folder)  -> the file is removed, then unlocked (a claimer that opened the old file sees
                        it is no longer the folder's ``.claim`` and tries again)
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..core.errors import SupernetError

CLAIM = ".claim"
_HELD: dict[Path, int] = {}  # folder (resolved) -> the open, locked file descriptor of its claim


def claim(folder: str | os.PathLike, what: str = "run folder", name: str = CLAIM) -> Path:
    """Lock ``folder/name`` (the folder must exist) for this process; refuse if another process holds it."""
    path = Path(folder).resolve() / name
    if path in _HELD:
        return path
    for _ in range(100):  # retried only while a releasing holder removes the file under us
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise SupernetError(f"{what} {str(folder)!r} is in use by {holder}; wait for it to finish (or stop it) "
                                "or choose another --out") from None
        if _same_file(fd, path):
            break
        os.close(fd)
    else:  # pragma: no cover  (a folder whose claim file vanishes 100 times in a row)
        raise SupernetError(f"cannot claim {what} {str(folder)!r}: its {name} file keeps disappearing")
    note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([_program(), *sys.argv[1:]])[:200]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(note).encode(), 0)
    _HELD[path] = fd
    return path


def release(folder: str | os.PathLike, name: str = CLAIM) -> None:
    """Give up this process's claim on ``folder`` (nothing when it holds none)."""
    path = Path(folder).resolve() / name
    fd = _HELD.pop(path, None)
    if fd is None:
        return
    try:
        if _same_file(fd, path):
            path.unlink()
    finally:
        os.close(fd)


def held(folder: str | os.PathLike, name: str = CLAIM) -> bool:
    """Whether this process holds the claim on ``folder``."""
    return Path(folder).resolve() / name in _HELD


def _program() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return "supernet" if name == "__main__.py" else name  # python -m supernet.cli: the console script's name


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(fd: int) -> str:
    """``pid N on HOST since TIME (COMMAND)`` from the claim file, or ``another process``."""
    try:
        note = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {note['pid']} on {note['host']} since {note['since']} ({note['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
