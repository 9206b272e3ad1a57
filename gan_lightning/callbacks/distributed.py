"""Random streams under DDP: each rank draws its own noise, and resuming stays exact."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """A distinct seed per (run seed, epoch, rank), well inside torch's 64-bit range."""
    return (seed * 1_000_003 + epoch) * 1024 + rank


class RankSeeds(pl.Callback):
    """With several processes, reseeds each rank's global RNG at every epoch start.

    Every DDP process runs ``seed_everything(seed)``, so without this all ranks would draw the
    same latent vectors and D would see each fake ``world_size`` times per step. Reseeding
    from (seed, epoch, rank) also makes a resumed run draw exactly what an uninterrupted one
    drew, which the checkpoint's RNG states (rank zero's only) cannot do for the other ranks.
    With one process it does nothing, and the saved RNG states keep resumes exact.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            torch.manual_seed(rank_seed(self.seed, trainer.current_epoch, trainer.global_rank))
