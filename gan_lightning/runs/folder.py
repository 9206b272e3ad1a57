"""A run's folder before training starts: held by one run, writable, and what to resume.

:func:`prepare` is the one step: the Hydra callback takes it for a single run before Hydra
writes anything into the folder, and ``train`` for a run started from Python or a sweep job;
the second asker gets the first one's answer, so no check runs twice. The hold it takes (an OS
lock, :mod:`gan_lightning.runs.lock`) lasts until :func:`release` or the end of the process, so
two runs never write into one folder, and a killed run's folder is free again at once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gan_lightning.errors import RunError
from gan_lightning.runs import lock
from gan_lightning.runs.checkpoint_io import remove_partial_files
from gan_lightning.runs.checkpoints import newest_complete_checkpoint, read_saved_state

log = logging.getLogger(__name__)

#: Where launchers put a process's rank: Lightning's DDP launcher (LOCAL_RANK, NODE_RANK),
#: torchrun (RANK, GROUP_RANK), SLURM (SLURM_PROCID), LSF (JSM_NAMESPACE_RANK).
RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
    "SLURM_PROCID",
    "JSM_NAMESPACE_RANK",
)


@dataclass(frozen=True)
class RunFolder:
    """A prepared run folder and the checkpoint its fit starts from (None: from scratch)."""

    path: Path
    asked: str | None  # ckpt_path as given
    ckpt_path: str | None
    sweep_job: bool
    removed: tuple[Path, ...]  # temporary files of checkpoint writes a kill cut short

    def report(self) -> None:
        """Log what preparing found; ``train`` calls it once the run's log is set up (the
        Hydra callback prepares before it is)."""
        if self.removed:
            log.info(
                "Removed %d unfinished checkpoint write(s) of a run stopped while saving: %s",
                len(self.removed),
                ", ".join(path.name for path in self.removed),
            )
        if self.asked != "last":
            return
        if self.ckpt_path is not None:
            report_resume_point(self.ckpt_path)
        elif self.sweep_job:
            log.info(
                "No checkpoint in %s: this sweep job starts from scratch.",
                self.path / "checkpoints",
            )
        else:
            log.warning(
                "ckpt_path=last: %s stopped before its first checkpoint; starting it from scratch.",
                self.path,
            )


#: Folder (resolved) -> its answer, while this process holds it (or shares rank 0's hold).
_prepared: dict[Path, RunFolder] = {}


def is_rank_zero() -> bool:
    """Whether this process is the first of its launch, or the only one.

    Lightning starts the other ranks of a DDP run by running the command again; they share the
    folder of rank 0, which holds it and cleans it up, and only read it themselves.
    """
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def prepare(folder: Path, ckpt_path: str | None, *, sweep_job: bool = False) -> RunFolder:
    """Make ``folder`` ready for one run and hold it; once per folder and process.

    In order: the folder is writable (a read-only or full disk fails now, not at the first
    checkpoint), this process holds it (rank 0 only), temporary files that killed writes left
    are removed, and ``ckpt_path`` is resolved (:func:`resolve_ckpt_path`). The checks run under
    the hold, so two processes cannot both find the folder free. A refusal keeps the hold for
    the caller to :func:`release`; a later call for the same folder returns the first answer.
    """
    key = folder.resolve()
    if key in _prepared:
        return _prepared[key]
    rank_zero = is_rank_zero()
    if rank_zero:
        ensure_writable(folder)
        lock.hold(folder)
    removed = tuple(remove_partial_files(folder / "checkpoints")) if rank_zero else ()
    resolved = resolve_ckpt_path(ckpt_path, folder, sweep_job=sweep_job)
    _prepared[key] = RunFolder(folder, ckpt_path, resolved, sweep_job, removed)
    return _prepared[key]


def release(folder: Path) -> None:
    """End what :func:`prepare` or :func:`held` started for ``folder`` in this process."""
    _prepared.pop(folder.resolve(), None)
    lock.release(folder)


@contextlib.contextmanager
def prepared(
    folder: Path, ckpt_path: str | None, *, sweep_job: bool = False
) -> Iterator[RunFolder]:
    """:func:`prepare` for a ``with`` block, reported once the log is set up, and released at
    its end unless the folder was prepared or held before: then it is the earlier one's (the
    Hydra callback's, a sweep job's) to release."""
    earlier = folder.resolve() in _prepared or lock.holds(folder)
    try:
        run = prepare(folder, ckpt_path, sweep_job=sweep_job)
        run.report()
        yield run
    finally:
        if not earlier:
            release(folder)


@contextlib.contextmanager
def held(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for a ``with`` block (a sweep job, from its first record to its last);
    ``train`` prepares it inside. Raises :class:`~gan_lightning.runs.lock.FolderInUse`."""
    lock.hold(folder)
    try:
        yield
    finally:
        release(folder)


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file: a read-only or full disk fails now, not at the
    first checkpoint an epoch later."""
    probe = folder / ".write_probe"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as file:
            # Whole blocks, synced: a nearly full disk can accept a few cached bytes.
            file.write(bytes(64 * 1024))
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or error
        raise RunError(
            f"cannot write to the output folder {folder}: {reason}. Free some space or fix the "
            "permissions, or write elsewhere with paths.log_dir=<folder> (or hydra.run.dir=...)."
        ) from error
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def resolve_ckpt_path(
    ckpt_path: str | None, output_dir: Path, *, sweep_job: bool = False
) -> str | None:
    """``last`` means the newest complete checkpoint of this run folder; any other path must exist.

    The newest is ``last.ckpt`` or, after a stop inside an epoch, ``interrupted.ckpt`` (see
    :func:`newest_complete_checkpoint`). A folder that already holds checkpoints is never reused
    without ``ckpt_path``. ``ckpt_path=last`` starts from scratch, with a warning, where a run
    was started but stopped before its first checkpoint (Hydra's ``.hydra/`` is there), and in
    a sweep, where it redoes the jobs that never reached one.
    """
    checkpoints = output_dir / "checkpoints"
    if ckpt_path is None:
        existing = sorted(checkpoints.glob("*.ckpt"))
        if existing:
            raise RunError(
                f"{output_dir} already holds a run ({existing[-1].name}); nothing is overwritten. "
                "Resume it with ckpt_path=last, or start a new run in another folder "
                "(leave hydra.run.dir unset to get a fresh timestamped one)."
            )
        return None
    if ckpt_path == "last":
        newest = newest_complete_checkpoint(checkpoints)
        if newest is not None:
            return str(newest.path)
        if sweep_job or (output_dir / ".hydra").is_dir():
            return None  # RunFolder.report says so
        raise RunError(
            f"ckpt_path=last: no checkpoint in {checkpoints}; pass the old run's folder too: "
            "hydra.run.dir=<run folder> ckpt_path=last"
        )
    path = Path(ckpt_path)
    if path.is_file():
        return str(path)
    raise RunError(
        f"ckpt_path={ckpt_path}: no checkpoint at {path}; check the path (checkpoints live in "
        "<run folder>/checkpoints/)"
    )


def report_resume_point(ckpt_path: str) -> None:
    """Say what ``ckpt_path=last`` chose: which file, how far it had got, and the older ones."""
    chosen = read_saved_state(Path(ckpt_path))
    older = [
        f"{state.path.name}: {state.describe()}"
        for path in sorted(Path(ckpt_path).parent.glob("*.ckpt"))
        if path.name != Path(ckpt_path).name and (state := read_saved_state(path)) is not None
    ]
    log.info(
        "ckpt_path=last: resuming from %s (%s), the newest complete state%s.",
        ckpt_path,
        chosen.describe() if chosen else "?",
        f"; older: {', '.join(older)}" if older else "",
    )
