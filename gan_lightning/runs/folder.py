"""A run's folder before training starts: writable, not someone else's, and what to resume.

``train`` calls these before any data is read, and the sweep's Hydra callback calls them for
every job before the first one starts, so a sweep that cannot write or resume fails at once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

from gan_lightning.errors import RunError
from gan_lightning.runs.checkpoints import newest_complete_checkpoint, read_saved_state

log = logging.getLogger(__name__)


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
        if sweep_job:
            log.info("No checkpoint in %s: this sweep job starts from scratch.", checkpoints)
            return None
        if (output_dir / ".hydra").is_dir():
            return None  # train() says so
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


def report_resume_point(ckpt_path: str | None, output_dir: Path) -> None:
    """Say what ``ckpt_path=last`` chose: which file and how far it had got, or a fresh start."""
    if ckpt_path is None:
        log.warning(
            "ckpt_path=last: %s stopped before its first checkpoint; starting it from scratch.",
            output_dir,
        )
        return
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
