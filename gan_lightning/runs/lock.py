"""One process per run folder: an OS file lock that lasts as long as the process holding it.

Two runs writing into one folder ruin each other without a word: Lightning's ``ModelCheckpoint``
versions the names (``last-v1.ckpt``) and its top-k clean-up deletes the other run's files. A
check that the folder "holds no run yet" races with a second process starting at the same
moment, and a marker file outlives a ``kill -9``. ``fcntl.flock`` on ``<folder>/.lock`` does
neither: the kernel grants it to one open file at a time and drops it when the holder's
descriptor closes, which happens when the process dies however it dies. The holder writes its
pid, host and start time into the file, so a refused process can say who holds the folder.

A process holds a folder once: :func:`hold` on a folder it already holds does nothing (a second
``flock`` on a new descriptor would refuse the process its own folder), and :func:`release` ends
the hold. Nothing here waits: a held folder is refused at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from gan_lightning.errors import RunError

log = logging.getLogger(__name__)

#: The file in a run folder whose lock is the hold. It is never deleted: two processes could
#: otherwise lock two different files of the same name, one deleted and one new.
LOCK_FILE = ".lock"

#: Folder (resolved) -> the descriptor whose lock is this process's hold on it.
_held: dict[Path, int] = {}


class FolderInUse(RunError):
    """Another live process holds the run folder; the message names it and what to do."""


def holds(folder: Path) -> bool:
    """Whether this process holds ``folder``."""
    return folder.resolve() in _held


def hold(folder: Path) -> None:
    """Hold the existing ``folder`` until :func:`release` or the end of this process.

    Raises :class:`FolderInUse`, naming the process and host that hold it, when another process
    does. Where the file system cannot lock at all, the run goes on unprotected, with a warning.
    """
    key = folder.resolve()
    if key in _held:
        return
    path = key / LOCK_FILE
    try:
        # Not truncated here: the bytes may be the live holder's name, needed for the refusal.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunError(
            f"cannot create the lock file {path}: {error.strerror or error}. Fix the folder's "
            "permissions, or write elsewhere with paths.log_dir=<folder> (or hydra.run.dir=...)."
        ) from error
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise FolderInUse(_in_use(key, _holder(path))) from None
    except OSError as error:  # e.g. ENOLCK: a network file system without lock support
        os.close(descriptor)
        log.warning(
            "Cannot lock %s (%s): nothing stops another run from writing into %s at the same time.",
            path,
            error.strerror or error,
            key,
        )
        return
    _held[key] = descriptor
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
    with contextlib.suppress(OSError):  # the name only serves another process's refusal
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(holder) + "\n").encode(), 0)


def release(folder: Path) -> None:
    """End this process's hold on ``folder``, if it has one."""
    descriptor = _held.pop(folder.resolve(), None)
    if descriptor is None:
        return
    # Emptied first: a process refused in the instant before the unlock names nobody stale.
    with contextlib.suppress(OSError):
        os.ftruncate(descriptor, 0)
    fcntl.flock(descriptor, fcntl.LOCK_UN)
    os.close(descriptor)


def _holder(path: Path) -> str:
    """Who holds the lock on ``path``, as the holder wrote it."""
    try:
        holder = json.loads(path.read_text())
        return f"process {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"


def _in_use(folder: Path, holder: str) -> str:
    return (
        f"{folder} is in use by another run: {holder}. A folder holds one run at a time (two "
        "would overwrite each other's checkpoints), so this one does not start. Wait for that run "
        "to end, or stop it, and then resume it with ckpt_path=last; or start a new run in "
        "another folder (leave hydra.run.dir or hydra.sweep.dir unset to get a fresh one)."
    )


def _forget_in_child() -> None:
    # A forked child (a DataLoader worker) shares the holder's open lock file, which would keep
    # the folder held after the holder dies until the child notices; its copy is closed, which
    # leaves the holder's lock as it is. (Children that exec, like Lightning's DDP ranks, never
    # get the descriptor: Python opens files non-inheritable.)
    for descriptor in _held.values():
        with contextlib.suppress(OSError):
            os.close(descriptor)
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)
