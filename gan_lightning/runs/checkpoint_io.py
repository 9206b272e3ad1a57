"""Write checkpoints atomically, so that a file name never holds half a file.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction, whose temporary file sits
in the system's temporary folder: moving it into the run folder is a copy when the two are on
different file systems, and a full disk or a ``kill -9`` during that copy leaves a truncated
checkpoint under the real name. Here every file is written to a temporary name *in its own
folder*, flushed and fsynced, then renamed over the old one (``os.replace``, atomic on POSIX and
Windows): at every instant the name holds the old complete file or the new complete one. A
failed write removes its temporary file; one left behind by a killed process is removed by the
next run (:func:`remove_partial_files`).

:class:`AtomicCheckpointIO` is the Lightning ``CheckpointIO`` plugin (``trainer.plugins`` in
conf/trainer/default.yaml); :func:`atomic_save` serves files written outside Lightning (the
classifier's weights).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from gan_lightning.errors import GanLightningError

#: Temporary files are ``.<name>.partial`` next to their target: hidden, and never ``*.ckpt``,
#: so nothing that looks for checkpoints can mistake one for a checkpoint.
PARTIAL_SUFFIX = ".partial"
#: errno values that mean "no room": the fix is freeing space, not retrying.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: A write that failed with less room than this left on its disk failed for want of room.
#: torch's zip writer reports a full disk as a ``RuntimeError`` ("unexpected pos ..."), not
#: as ``ENOSPC``, so the free space is the only witness.
FULL_DISK_BYTES = 1 << 20


def partial_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


def write_failure_reason(error: BaseException) -> str:
    """What an ``OSError`` means for the user, in a few words."""
    code = getattr(error, "errno", None)
    if code in DISK_FULL:
        return "the disk is full"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.EROFS:
        return "the file system is read-only"
    return getattr(error, "strerror", None) or str(error)


class CheckpointWriteError(GanLightningError, OSError):
    """Writing the checkpoint ``path`` failed; the file of that name (if any) is untouched.

    An ``OSError`` still (with the original ``errno``), so callers that handle a full disk
    handle this too; during ``fit`` it becomes a :class:`~gan_lightning.errors.RunFault`, which
    adds the last good checkpoint and the resume command.
    """

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(error.errno, write_failure_reason(error), str(path))
        self.path = path


def _is_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
    except OSError:
        return False


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened on Windows."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_save(
    obj: Any, path: str | Path, write: Callable[[Any, IO[bytes]], None] = torch.save
) -> Path:
    """``write(obj, file)`` into ``.<name>.partial`` beside ``path``, fsync, rename over ``path``.

    Raises :class:`CheckpointWriteError` (an ``OSError``) naming ``path`` when the disk is full
    or the folder unwritable; any failure, a ``KeyboardInterrupt`` included, removes the
    temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    temporary = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as file:
            write(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        # Measured before the temporary file is removed: it holds the space the write took.
        full = isinstance(error, Exception) and not isinstance(error, OSError) and _is_full(path)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CheckpointWriteError(path, error) from error
        if full:
            no_room = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temporary))
            raise CheckpointWriteError(path, no_room) from error
        raise
    _fsync_folder(path.parent)
    return path


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writes killed midway left in ``folder``; returns them
    (the run folder's report names them once the run's log is set up)."""
    removed = []
    for leftover in sorted(Path(folder).glob(f".*{PARTIAL_SUFFIX}")):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed.append(leftover)
    return removed


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic on local disks (see the module docstring).

    Loading and removing are Lightning's own; remote paths (``s3://`` ...) keep Lightning's
    fsspec transaction, which object stores make atomic themselves.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path) and not str(path).startswith("file://"):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(checkpoint, str(path).removeprefix("file://"), self.write)

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        """Serialize into the open temporary file (a hook for tests that slow or break it)."""
        torch.save(checkpoint, file)
