"""Guards against the failures that cost GAN users hours: interruption and collapse.

:class:`RunGuard` saves ``checkpoints/interrupted.ckpt`` when Ctrl-C, SIGTERM or a crash stops
training and says how to resume, keeps a resumed run's TensorBoard curves free of the steps
logged twice, and warns when the classifier-judged class histogram of the generated digits
collapses. Divergence (a NaN/inf loss or weight) is the training step's own business:
:mod:`gan_lightning.divergence`.
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
from tensorboard.compat.proto.event_pb2 import Event, SessionLog

from gan_lightning.callbacks.tensorboard import tensorboard_logger
from gan_lightning.checkpoint_io import DISK_FULL, CheckpointWriteError
from gan_lightning.checkpoints import read_saved_state
from gan_lightning.compat import event_writer, logged_step
from gan_lightning.errors import DivergenceError
from gan_lightning.faults import resume_command, training_finished

log = logging.getLogger(__name__)

#: Logged by the metrics callback: the share of generated samples in the rarest class.
COLLAPSE_METRIC = "metrics/min_class_fraction"


def is_write_failure(exception: BaseException) -> bool:
    """A failed checkpoint write, or a full or read-only disk: saving again would fail too."""
    return isinstance(exception, CheckpointWriteError) or (
        isinstance(exception, OSError) and exception.errno in (*DISK_FULL, errno.EROFS)
    )


class RunGuard(Checkpoint):
    """Saves ``interrupted.ckpt`` on Ctrl-C, SIGTERM or a crash; guards resumes and collapse.

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
    ``Checkpoint``. Being a ``Checkpoint``, it also runs after the plain callbacks at each epoch
    end, so it sees the collapse metric the metrics callback logged for this epoch. The metric
    stays in ``trainer.callback_metrics`` between evaluations, so one value is warned about once.

    Args:
        dirpath: the run's checkpoint folder.
        min_class_fraction: warn when the rarest class is a smaller share of the generated
            samples than this (an even spread over 10 classes gives 0.1).
    """

    def __init__(self, dirpath: str | Path, min_class_fraction: float = 0.02) -> None:
        self.ckpt_path = Path(dirpath) / "interrupted.ckpt"
        if not 0 <= min_class_fraction <= 1:
            raise ValueError(
                f"guard.min_class_fraction={min_class_fraction} is outside the allowed range [0, 1]"
            )
        self.min_class_fraction = min_class_fraction
        self._warned_fraction: float | None = None
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
        self._flush_tensorboard(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush_tensorboard(trainer)

    @staticmethod
    def _flush_tensorboard(trainer: pl.Trainer) -> None:
        """Hand TensorBoard's queued events to the OS, where a ``kill -9`` cannot lose them.

        The writer keeps up to 10 events for up to two minutes; without this a killed run
        loses the curves logged before its checkpoint (the resumed run does not log them again),
        and the previous epoch's averages, which Lightning logs after the epoch's checkpoint.
        """
        logger = tensorboard_logger(trainer)
        if logger is not None and trainer.is_global_zero:
            logger.experiment.flush()

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

    @staticmethod
    def _purge_tensorboard_from(trainer: pl.Trainer, step: int) -> None:
        """Have TensorBoard drop the events an earlier attempt logged at ``step`` and later.

        It is the event ``SummaryWriter(purge_step=...)`` writes, but Lightning creates the
        writer before the checkpoint (and so the step) is known.
        """
        logger = tensorboard_logger(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        restart = Event(step=step, session_log=SessionLog(status=SessionLog.START))
        event_writer(logger.experiment).add_event(restart)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """A run restarted from scratch in its folder (killed before its first checkpoint):
        drop the killed attempt's curves, before this attempt logs anything.

        The checkpoint to resume is not known yet here (Lightning loads it after ``setup``),
        but a folder without checkpoints cannot be resuming its own.
        """
        logger = tensorboard_logger(trainer)
        if stage != "fit" or logger is None or any(self.ckpt_path.parent.glob("*.ckpt")):
            return
        # The logger's writer (and so this attempt's event file) exists by now.
        if len(list(Path(logger.log_dir).glob("events.out.tfevents.*"))) > 1:
            self._purge_tensorboard_from(trainer, 0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """On resume, drop what the stopped run logged after the checkpoint: the steps of the
        unfinished epoch, which the resumed run logs again (without this, each appears twice)."""
        if trainer.ckpt_path is not None:
            self._purge_tensorboard_from(trainer, logged_step(trainer))

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

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(COLLAPSE_METRIC)
        if value is None:
            return
        fraction = float(value)
        if fraction >= self.min_class_fraction or fraction == self._warned_fraction:
            return
        self._warned_fraction = fraction
        log.warning(
            "Possible mode collapse at epoch %d: the rarest class is %.2f%% of the generated "
            "samples judged by the classifier (an even spread over 10 classes gives 10%%; "
            "warning below guard.min_class_fraction=%g).",
            trainer.current_epoch,
            100 * fraction,
            self.min_class_fraction,
        )
