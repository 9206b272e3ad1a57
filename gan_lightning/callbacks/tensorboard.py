"""TensorBoard's event files, kept right across stops and resumes, with D and G on one chart.

Lightning's logger writes the events; what it does not do by itself is lay out the charts,
hand queued events to the OS before a checkpoint (so a ``kill -9`` loses none that the
checkpoint covers), and tell TensorBoard to drop what a stopped run logged after the point a
resumed run starts again from (so no step appears twice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.compat.proto.event_pb2 import Event, SessionLog

from gan_lightning.compat import event_writer, logged_step

#: D's outputs: D(x) for the BCE family, D_score(x) for hinge and WGAN
#: (``GANLoss.discriminator_outputs``); a run logs one of the two pairs.
_D_REAL, _D_FAKE = r"D(_score)?\(x\)", r"D(_score)?\(G\(z\)\)"
#: Custom-scalars layout: each chart overlays several tags (regexes) of one run.
LAYOUT = {
    "GAN": {
        "losses per step": ["Multiline", [r"loss/d_step", r"loss/g_step"]],
        "losses per epoch": ["Multiline", [r"loss/d_epoch", r"loss/g_epoch"]],
        "D outputs per step": ["Multiline", [f"{_D_REAL}_step", f"{_D_FAKE}_step"]],
        "D outputs per epoch": ["Multiline", [f"{_D_REAL}_epoch", f"{_D_FAKE}_epoch"]],
    },
    # Why a run stalls (gan/health.py says how each reads): one point per epoch.
    "training health": {
        "D overfitting: r_t and augment probability": [
            "Multiline",
            [r"health/r_t_epoch", r"health/ada_p_epoch"],
        ],
        "D accuracy on reals and fakes": [
            "Multiline",
            [r"health/d_acc_real_epoch", r"health/d_acc_fake_epoch"],
        ],
        "gradient norms": ["Multiline", [r"health/grad_norm_d_epoch", r"health/grad_norm_g_epoch"]],
        "sample spread (0: collapsed to one image)": [
            "Multiline",
            [r"health/sample_spread_epoch"],
        ],
    },
}


def tensorboard_logger(trainer: pl.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


class TensorBoardEvents(pl.Callback):
    """Lays out the charts, flushes before checkpoints, purges a stopped run's later steps.

    D and G losses share a chart through a custom-scalars layout (CUSTOM SCALARS tab):
    ``add_scalars`` would do it too, but it writes one extra run folder per curve, which
    clutters the run list of a sweep.

    Args:
        checkpoint_dir: the run's checkpoint folder; a run folder without checkpoints is
            starting from scratch, so whatever an earlier attempt logged there is dropped.
    """

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """A run restarted from scratch in its folder (killed before its first checkpoint):
        drop the killed attempt's curves, before this attempt logs anything.

        The checkpoint to resume is not known yet here (Lightning loads it after ``setup``),
        but a folder without checkpoints cannot be resuming its own.
        """
        logger = tensorboard_logger(trainer)
        if stage != "fit" or logger is None or not trainer.is_global_zero:
            return
        if any(self.checkpoint_dir.glob("*.ckpt")):
            return
        logger.experiment  # noqa: B018  (creates this attempt's event file, if nothing has)
        if len(list(Path(logger.log_dir).glob("events.out.tfevents.*"))) > 1:
            _purge_from(logger, 0)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = tensorboard_logger(trainer)
        if logger is not None and trainer.is_global_zero:
            logger.experiment.add_custom_scalars(LAYOUT)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """On resume, drop what the stopped run logged after the checkpoint: the steps of the
        unfinished epoch, which the resumed run logs again (without this, each appears twice)."""
        logger = tensorboard_logger(trainer)
        if trainer.ckpt_path is not None and logger is not None and trainer.is_global_zero:
            _purge_from(logger, logged_step(trainer))

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        _flush(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The previous epoch's averages: Lightning logs them after the epoch's checkpoint.
        _flush(trainer)


def _flush(trainer: pl.Trainer) -> None:
    """Hand TensorBoard's queued events to the OS, where a ``kill -9`` cannot lose them.

    The writer keeps up to 10 events for up to two minutes; without this a killed run loses
    the curves logged before its checkpoint, which the resumed run does not log again.
    """
    logger = tensorboard_logger(trainer)
    if logger is not None and trainer.is_global_zero:
        logger.experiment.flush()


def _purge_from(logger: TensorBoardLogger, step: int) -> None:
    """Have TensorBoard drop the events an earlier attempt logged at ``step`` and later.

    It is the event ``SummaryWriter(purge_step=...)`` writes, but Lightning creates the writer
    before the checkpoint (and so the step) is known.
    """
    restart = Event(step=step, session_log=SessionLog(status=SessionLog.START))
    event_writer(logger.experiment).add_event(restart)
