"""How far a run has got, and the settings that follow it instead of the epoch count.

Runs here are budgeted by ``trainer.max_time`` more often than by epochs, and a per-epoch
scheduler cannot know when a 10-minute run ends. :func:`training_progress` is the share of the
budget used, whichever of the clock and the epochs ends the run first; the top-k share and the
cosine learning-rate decay (``tricks.top_k``, ``tricks.lr_decay_to``) read it each step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer
from torch.optim import Optimizer


def training_progress(trainer: pl.Trainer, batch_idx: int) -> float:
    """The fraction of the run done, in [0, 1]: the larger of the time and the epoch share.

    The time share reads Lightning's own ``Timer`` (which ``trainer.max_time`` installs and
    which stops the run), so the schedule ends exactly when training does.
    """
    shares = [0.0]
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is not None:
        remaining = timer.time_remaining("train")
        if remaining is not None:
            elapsed = timer.time_elapsed("train")
            shares.append(elapsed / max(elapsed + remaining, 1e-9))
    batches = trainer.num_training_batches
    if trainer.max_epochs and trainer.max_epochs > 0 and math.isfinite(batches) and batches:
        shares.append((trainer.current_epoch + batch_idx / batches) / trainer.max_epochs)
    return min(max(shares), 1.0)


def scale_learning_rates_(optimizers: Iterable[Optimizer], factor: float) -> None:
    """Set every parameter group's learning rate to ``factor`` times its starting value.

    The starting value is kept in the group itself (``base_lr``), so it travels with the
    optimizer's state in the checkpoint and a resumed run scales the same base.
    """
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * factor
