"""The folder lock: one heatseg run at a time writes into an output folder.

:func:`folder_lock` holds ``folder/.heatseg.lock`` (the owner's pid and host) while a run
writes there. A second run on the same folder is refused with the owner's pid; the lock
of a run whose process is gone (killed) is taken over. The lock file appears whole or not
at all (a hard link of a complete temporary file; an exclusive create where the file
system has no hard links), and two runs taking over the same stale lock cannot both win.
"""

import contextlib
import os
import socket
import tempfile
from pathlib import Path

from .io import HeatsegIOError
from .outputs import _part_prefix, _pid_alive

__all__ = ["LOCK_NAME", "folder_lock"]

LOCK_NAME = ".heatseg.lock"


@contextlib.contextmanager
def folder_lock(folder):
    """Hold ``folder/.heatseg.lock`` (owner pid and host) while a run writes into ``folder``.

    A second run on the same folder is refused with the owner's pid; a lock whose owner
    process is gone (a killed run) is taken over.
    """
    lock = Path(folder) / LOCK_NAME
    mine = f"{os.getpid()} {socket.gethostname()}\n"
    _take_lock(lock, mine)
    try:
        yield lock
    finally:
        if _read_lock(lock) == mine:
            lock.unlink(missing_ok=True)


def _read_lock(lock):
    try:
        return lock.read_text()
    except OSError:
        return None


def _create_lock(tmp, lock, mine):
    """Create ``lock`` holding ``mine``, or raise ``FileExistsError``."""
    try:
        os.link(tmp, lock)  # atomic: the lock appears whole, or not at all
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (FAT, some shares): create it exclusively
        with os.fdopen(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w") as fh:
            fh.write(mine)


def _take_lock(lock, mine):
    fd, tmp = tempfile.mkstemp(prefix=_part_prefix(lock), suffix=".part", dir=lock.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(mine)
        for _ in range(5):
            try:
                _create_lock(tmp, lock, mine)
                return
            except FileExistsError:
                pass
            owner = _read_lock(lock)
            if owner is None:  # released meanwhile
                continue
            pid, _, host = owner.strip().partition(" ")
            if not pid.isdigit() or host != socket.gethostname() or _pid_alive(int(pid)):
                where = f" on {host}" if host and host != socket.gethostname() else ""
                raise HeatsegIOError(
                    f"{lock.parent}: another heatseg run (pid {pid or '?'}{where}) is writing into this folder; "
                    f"wait for it to finish or choose another output folder (if no such run exists, delete {lock}).")
            aside = lock.with_name(f"{lock.name}.{os.getpid()}.stale")
            try:
                os.replace(lock, aside)  # one taker wins; a loser finds the winner's live lock next
            except FileNotFoundError:
                continue
            if _read_lock(aside) != owner:  # we moved a newer, live lock: put it back
                with contextlib.suppress(OSError):
                    os.link(aside, lock)
            aside.unlink(missing_ok=True)
        raise HeatsegIOError(f"{lock}: cannot take the folder's lock; try again.")
    finally:
        Path(tmp).unlink(missing_ok=True)
