"""Temporary files named after the process that writes them, and removing the ones left behind.

    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=folder)
    remove_stale(folder, "." + name + ".", ".tmp")          # at the next start

An atomic write goes to a temporary file (or folder) beside its target and is
renamed over it at the end. A process killed half-way (kill -9, power cut)
cannot remove its temporary file, and a paper-size checkpoint leaves hundreds
of megabytes each time. So the writer's pid is part of the name,
``.<name>.<pid>.<random>.tmp``, and the next start removes every such file
whose process is gone; a write still in progress (a live pid) is left alone.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def temp_prefix(path):
    """``.<name>.<pid>.`` for a temporary file beside ``path`` (mkstemp/mkdtemp add the rest)."""
    return f".{os.path.basename(os.fspath(path))}.{os.getpid()}."


def default_mode(tmp):
    """Give a mkstemp file the permissions a plain ``open(path, "w")`` would (0666 less the umask).

    mkstemp creates its files with mode 0600, so without this every file
    written atomically (checkpoints, extracted data) would be private to its
    owner, unlike every other file the run writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def pid_alive(pid):
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                            # exists, owned by someone else
        return True
    return True


def remove_stale(folder, prefix, suffix=""):
    """Delete the files and folders ``<prefix><pid>.<random><suffix>`` in ``folder`` whose process is gone.

    Names without a pid (``<prefix><random><suffix>``, from before the pid
    was part of them) are removed as well. Returns ``[(Path, bytes)]``.
    """
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    for f in folder.iterdir():
        if not (f.name.startswith(prefix) and f.name.endswith(suffix)):
            continue
        middle = f.name[len(prefix):len(f.name) - len(suffix)].split(".")
        if len(middle) == 2 and middle[0].isdigit():
            pid = int(middle[0])
            if pid == os.getpid() or pid_alive(pid):
                continue                       # a write in progress (this or another process)
        try:
            if f.is_dir() and not f.is_symlink():
                size = sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
                shutil.rmtree(f)
            else:
                size = f.stat().st_size
                f.unlink()
            removed.append((f, size))
        except FileNotFoundError:
            pass
    return removed
