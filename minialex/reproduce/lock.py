"""One process per run folder: a lock file, so that two commands never train the same run at once.

``--only`` lets several processes share one ``--out`` (one core each). A
mistyped pattern, or a second ``--resume`` started while the first still
runs, would otherwise make two processes continue the same run from the
same checkpoint and overwrite each other's metrics.csv and checkpoint.

    with run_lock(run_dir):
        ...train...

The lock is ``RUN_DIR/lock``, created exclusively, holding the owner's pid
and host. A lock left by a process that no longer runs on this host (killed
with SIGKILL, a lost machine) is taken over, saying so.
"""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from ..tempfiles import pid_alive

LOCK = "lock"


def _owner(path):
    """(pid, host) written in a lock file, or (None, None) when unreadable."""
    try:
        pid, host = path.read_text().split(maxsplit=1)
        return int(pid), host.strip()
    except (OSError, ValueError):
        return None, None


@contextlib.contextmanager
def run_lock(run_dir, log=print):
    """Hold ``run_dir/lock`` for the block; raises ValueError when a live process holds it."""
    path = Path(run_dir) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pid, host = _owner(path)
            if pid is not None and (host != socket.gethostname() or pid_alive(pid)):
                raise ValueError(f"{run_dir} is being trained by process {pid} on {host} ({path}); wait for "
                                 "it or stop it (if that process no longer runs, delete the lock file)") from None
            log(f"{run_dir}: taking over a stale lock ({path}: process {pid} is not running)")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me + "\n")
        break
    else:
        raise ValueError(f"{run_dir}: could not take {path}")
    try:
        yield path
    finally:
        if _owner(path)[0] == os.getpid():
            path.unlink(missing_ok=True)
