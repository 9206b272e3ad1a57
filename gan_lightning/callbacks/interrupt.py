"""Ctrl-C, SIGTERM or a crash mid-run: save the state so far, and say how to resume.

Divergence (a NaN/inf loss or weight) is the training step's own business
(:mod:`gan_lightning.gan.guard`); a mode-collapse warning comes from the metrics callback that
measures the class histogram; TensorBoard's side of a resume is in
:mod:`gan_lightning.callbacks.tensorboard`.
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from gan_lightning.errors import DivergenceError
from gan_lightning.runs.checkpoint_io import DISK_FULL, CheckpointWriteError
from gan_lightning.runs.checkpoints import read_saved_state
from gan_lightning.runs.faults import resume_command, training_finished

log = logging.getLogger(__name__)


def is_write_failure(exception: BaseException) -> bool:
    """A failed checkpoint write, or a full or read-only disk: saving again would fail too."""
    return isinstance(exception, CheckpointWriteError) or (
        isinstance(exception, OSError) and exception.errno in (*DISK_FULL, errno.EROFS)
    )


class InterruptCheckpoint(Checkpoint):
    """Saves ``interrupted.ckpt`` on Ctrl-C, SIGTERM or a crash, and prints how to resume.

    Lightning turns SIGTERM into an exception at the end of the current batch and calls
    ``on_exception`` for it as for crashes. Ctrl-C gets the same treatment here: a
    KeyboardInterrupt raised wherever the signal lands (inside TensorBoard's writer queue, say)
    can leave a library's locks or queues half-updated and the shutdown hanging, so the first
    Ctrl-C only asks to stop at the end of the current batch; a second one interrupts at once.
    ``last.ckpt`` is left alone: it is the end of the last finished epoch, the only point a run
    resumes from bit for bit, while ``interrupted.ckpt`` keeps the unfinished epoch's steps
    (``ckpt_path=last`` takes it, being newer); a fit that later gets past it deletes it. A
    diverged state (:class:`DivergenceError`) is not worth saving, nothing is saved before the
    first step, and nothing after a failed write (the disk is full: the last good checkpoint
    stands). When every epoch had been trained and only end-of-run work failed (the final
    metrics run before ``ModelCheckpoint``), the trained state is saved as ``last.ckpt``.

    Lightning's ``OnExceptionCheckpoint`` does the saving part, but its presence also makes
    ``fit(ckpt_path=None)`` silently resume from the newest checkpoint it can find; run folders
    here are resumed only when asked (``ckpt_path=last``), so this subclasses the plain
    ``Checkpoint``.

    Args:
        dirpath: the run's checkpoint folder.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.ckpt_path = Path(dirpath) / "interrupted.ckpt"
        self._stop_requested = False
        self._previous_sigint_handler: Any = None
        self._saved_step: int | None = None

    # ------------------------------------------------------------------ Ctrl-C at a safe point
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # signal.signal only works in the main thread (not, e.g., inside a notebook worker).
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint_handler = signal.signal(signal.SIGINT, self._request_stop)

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True
        log.warning("Ctrl-C: stopping after this batch (press Ctrl-C again to stop at once)")

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt  # into Lightning's handler, then on_exception below

    def _restore_sigint_handler(self) -> None:
        if self._previous_sigint_handler is not None:
            signal.signal(signal.SIGINT, self._previous_sigint_handler)
            self._previous_sigint_handler = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._saved_step = trainer.global_step

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_sigint_handler()
        if isinstance(exception, DivergenceError) or trainer.global_step == 0:
            return
        if is_write_failure(exception):
            return
        path = self.ckpt_path
        finished = training_finished(trainer)
        if finished:
            path = self.ckpt_path.with_name("last.ckpt")
        # After the last epoch ModelCheckpoint may have saved the final state already.
        if not (finished and self._saved_step == trainer.global_step):
            try:
                trainer.save_checkpoint(path, weights_only=False)  # optimizers too
            except Exception as error:  # a full disk must not hide the original exception
                log.error("Could not save %s: %s", path, error)
                return
        # A signal gets its resume hint here; any other error becomes a RunFault in train().
        if trainer.is_global_zero and isinstance(exception, KeyboardInterrupt | SystemExit):
            log.warning(self._resume_hint(trainer, exception, finished))

    def _resume_hint(self, trainer: pl.Trainer, exception: BaseException, finished: bool) -> str:
        reason = "Ctrl-C" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
        checkpoints = self.ckpt_path.parent
        run_dir = checkpoints.parent
        if finished:
            return (
                f"Training stopped by {reason} after its last epoch; the trained run is saved "
                f"in {checkpoints / 'last.ckpt'}."
            )
        lines = [
            f"Training stopped by {reason} in epoch {trainer.current_epoch}; saved the state "
            f"so far to {self.ckpt_path}."
        ]
        last = checkpoints / "last.ckpt"
        if last.is_file():
            lines += [
                "Resume from here (ckpt_path=last takes the newest state, this one):",
                f"  {resume_command(run_dir, 'last')}",
                "or bit for bit from the end of the last finished epoch (the unfinished epoch's "
                "steps are redone):",
                f"  {resume_command(run_dir, str(last))}",
            ]
        else:
            lines += [
                "No epoch had finished yet; resume from the interrupted state with:",
                f"  {resume_command(run_dir, 'last')}",
            ]
        return "\n".join(lines)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_sigint_handler()
        # Only reached when fit ends normally: the interrupted state is stale once another
        # checkpoint has got at least as far (a resume that ran no step keeps it).
        if stage != "fit" or not self.ckpt_path.is_file():
            return
        interrupted = read_saved_state(self.ckpt_path)
        others = (
            read_saved_state(path)
            for path in self.ckpt_path.parent.glob("*.ckpt")
            if path != self.ckpt_path
        )
        reached = max((state.global_step for state in others if state), default=-1)
        if interrupted is None or reached >= interrupted.global_step:
            trainer.strategy.remove_checkpoint(self.ckpt_path)
