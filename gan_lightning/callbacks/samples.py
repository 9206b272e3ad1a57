"""The fixed-noise sample grid: the same latent vectors every epoch, so progress is visible."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torchvision.utils import save_image

from gan_lightning.callbacks.tensorboard import tensorboard_logger
from gan_lightning.networks.latents import temper
from gan_lightning.pictures import grid_image
from gan_lightning.rules import Rule, int_at_least, refuse_broken


class SampleGrid(pl.Callback):
    """Every ``every_n_epochs``, draws the module's fixed noise through the sampling generator.

    The grid goes to TensorBoard (``samples/fixed_noise``) and to
    ``<run>/samples/epoch_NNN.png``; the PNG series is what the progress GIF is made from.
    """

    #: Its settings' checks: ``config.validate`` reads them from the class the entry's
    #: ``_target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("callbacks.sample_grid.every_n_epochs", int_at_least(1), "an integer >= 1"),
        Rule("callbacks.sample_grid.nrow", int_at_least(1), "an integer >= 1 (images per row)"),
    )

    def __init__(self, every_n_epochs: int = 1, nrow: int = 8) -> None:
        refuse_broken(
            self.RULES,
            {
                "callbacks.sample_grid.every_n_epochs": every_n_epochs,
                "callbacks.sample_grid.nrow": nrow,
            },
        )
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs and epoch + 1 != trainer.max_epochs:
            return
        if not trainer.is_global_zero:
            return
        with torch.no_grad():
            generator = pl_module.sampling_generator()
            labels = pl_module.fixed_labels if pl_module.conditional else None
            z = temper(generator, pl_module.fixed_noise)  # drawn once, at the prior's scale
            images = generator(z, labels).float().cpu()
        grid = grid_image(images, self.nrow)  # in colour for an RGB generator
        logger = tensorboard_logger(trainer)
        if logger is not None:
            logger.experiment.add_image("samples/fixed_noise", grid, global_step=epoch)
        folder = Path(trainer.default_root_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        save_image(grid, folder / f"epoch_{epoch:03d}.png")
