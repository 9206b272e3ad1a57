"""Turn a fault in the middle of a run into one paragraph: what failed, what is kept, what next.

A full disk, a folder whose permissions changed, or a bug in a callback (pictures, metrics)
raises somewhere inside ``trainer.fit``. Lightning has by then called ``on_exception``
(:class:`~gan_lightning.callbacks.interrupt.InterruptCheckpoint` saved what could be saved), so
all that is left is telling the user: which write or callback failed, which checkpoint is the
last good one and how far it had got, and the exact command that resumes after the fix. The
traceback of a bug goes to ``<run>/traceback.txt``, not the terminal.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig

from gan_lightning.runs.checkpoint_io import DISK_FULL, CheckpointWriteError, write_failure_reason
from gan_lightning.runs.checkpoints import SavedState, newest_complete_checkpoint

TRACEBACK_FILE = "traceback.txt"


def failing_callback(error: BaseException) -> tuple[pl.Callback, str] | None:
    """The callback and hook ``error`` escaped from, read off the traceback.

    Lightning calls every callback hook from ``_call_callback_hooks(trainer, hook_name)``, whose
    loop variable is the callback; the innermost such frame is where the error left a callback.
    """
    found = None
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_call_callback_hooks":
            callback = frame.f_locals.get("callback")
            if isinstance(callback, pl.Callback):
                found = (callback, str(frame.f_locals.get("hook_name", "a hook")))
        tb = tb.tb_next
    return found


def callback_keys(callbacks: Mapping[str, Any] | None) -> dict[str, str]:
    """Callback class name -> its key in the ``callbacks`` config group (``training_pictures``)."""
    return {
        str(spec["_target_"]).rsplit(".", 1)[-1]: key
        for key, spec in (callbacks or {}).items()
        if isinstance(spec, Mapping) and "_target_" in spec
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0].rstrip('.')}" if text else type(error).__name__


def _os_reason(error: OSError) -> str:
    """``the disk is full (No space left on device)``."""
    detail = os.strerror(error.errno) if error.errno else str(error)
    reason = write_failure_reason(error)
    return reason if reason == detail else f"{reason} ({detail})"


def what_failed(error: BaseException, trainer: pl.Trainer, keys: Mapping[str, str]) -> str:
    when = (
        "at the end of training"
        if training_finished(trainer)
        else f"in epoch {trainer.current_epoch}"
    )
    if isinstance(error, CheckpointWriteError):
        return f"Saving the checkpoint {error.path} {when} failed: {_os_reason(error)}"
    where = failing_callback(error)
    if where is None:
        place = f"Training failed {when} (step {trainer.global_step})"
    else:
        callback, hook = where
        name = type(callback).__name__
        key = f" (callbacks.{keys[name]})" if name in keys else ""
        place = f"The {name} callback{key} failed in {hook} {when}"
    if isinstance(error, OSError) and error.filename:
        return f"{place} writing {error.filename}: {_os_reason(error)}"
    return f"{place}: {_first_line(error)}"


def what_is_kept(newest: SavedState | None, finished: bool) -> str:
    if newest is None:
        return "No checkpoint had been saved yet."
    if finished and not newest.mid_epoch:
        return (
            f"Training had finished all its epochs, and the trained run is saved: {newest.path} "
            f"({newest.describe()}); nothing needs training again."
        )
    return (
        f"The last good checkpoint is {newest.path} ({newest.describe()}); no checkpoint was "
        "left half-written."
    )


def what_next(error: BaseException, run_dir: Path, newest: SavedState | None) -> str:
    """The fix, and the command that goes on from the last good checkpoint."""
    code = getattr(error, "errno", None)
    if code in DISK_FULL:
        fix = f"Free some space on the disk holding {run_dir}"
    elif isinstance(error, OSError):
        fix = f"Fix the permissions or the disk of {run_dir}"
    else:
        fix = "Fix the cause"
    if newest is None:
        command = resume_command(run_dir, "last").removesuffix(" ckpt_path=last")
        return f"{fix}, then start the run again with:\n  {command}"
    return f"{fix}, then resume with:\n  {resume_command(run_dir, 'last')}"


def save_traceback(error: BaseException, run_dir: Path) -> Path | None:
    """Keep the traceback of a bug for whoever fixes it (best effort: the disk may be full)."""
    path = run_dir / TRACEBACK_FILE
    with contextlib.suppress(OSError):
        path.write_text("".join(traceback.format_exception(error)))
        return path
    return None


def describe_fault(
    error: BaseException,
    trainer: pl.Trainer,
    run_dir: Path,
    callbacks: Mapping[str, Any] | None = None,
) -> str:
    """The paragraph a :class:`RunFault` carries; ``callbacks`` is the run's ``callbacks``
    config group, so that a failing callback is named by its key."""
    keys = callback_keys(callbacks)
    newest = newest_complete_checkpoint(run_dir / "checkpoints")
    finished = training_finished(trainer)
    lines = [f"{what_failed(error, trainer, keys)}.", what_is_kept(newest, finished)]
    if not isinstance(error, OSError):
        where = failing_callback(error)
        if where is not None and (key := keys.get(type(where[0]).__name__)):
            lines.append(f"To run without it: callbacks.{key}=null.")
        saved = save_traceback(error, run_dir)
        if saved is not None:
            lines.append(f"The traceback is in {saved}.")
    if not (finished and newest is not None and not newest.mid_epoch):
        lines.append(what_next(error, run_dir, newest))
    return " ".join(lines)


def resume_command(run_dir: Path, ckpt_path: str) -> str:
    """The command line that resumes ``run_dir``: this run's overrides plus the checkpoint."""
    if HydraConfig.initialized():
        overrides = [
            override
            for override in HydraConfig.get().overrides.task
            if not override.startswith("ckpt_path=")
        ]
        arguments = " ".join(shlex.quote(override) for override in overrides)
    else:
        arguments = "<this run's overrides>"
    return (
        f"python -m gan_lightning.train {arguments} "
        f"hydra.run.dir={shlex.quote(str(run_dir))} ckpt_path={shlex.quote(ckpt_path)}"
    )


def training_finished(trainer: pl.Trainer) -> bool:
    """Whether every epoch's training steps are done (what is left is end-of-run work)."""
    max_epochs = trainer.max_epochs
    processed = trainer.fit_loop.epoch_progress.current.processed
    return max_epochs is not None and max_epochs >= 0 and processed >= max_epochs
