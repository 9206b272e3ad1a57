"""TensorBoard niceties that Lightning's logger does not set up by itself."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger

#: Custom-scalars layout: each chart overlays several tags (regexes) of one run.
LAYOUT = {
    "GAN": {
        "losses per step": ["Multiline", [r"loss/d_step", r"loss/g_step"]],
        "losses per epoch": ["Multiline", [r"loss/d_epoch", r"loss/g_epoch"]],
        "D outputs per step": ["Multiline", [r"D\(x\)_step", r"D\(G\(z\)\)_step"]],
        "D outputs per epoch": ["Multiline", [r"D\(x\)_epoch", r"D\(G\(z\)\)_epoch"]],
    }
}


def tensorboard_logger(trainer: pl.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)


class TensorBoardLayout(pl.Callback):
    """Puts D and G losses on one chart (CUSTOM SCALARS tab).

    ``add_scalars`` would do it too, but it writes one extra run folder per curve, which clutters
    the run list of a sweep; a custom-scalars layout keeps one run per job.
    """

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = tensorboard_logger(trainer)
        if logger is not None and trainer.is_global_zero:
            logger.experiment.add_custom_scalars(LAYOUT)
