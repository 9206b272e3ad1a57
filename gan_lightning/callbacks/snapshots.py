"""Weights at fixed wall-clock minutes of training: the points of a quality-per-minute curve.

Epoch checkpoints say how good a run is after N epochs; a user choosing a recipe asks how good
it is after N *minutes*, and recipes differ several-fold in seconds per epoch. This callback
saves ``<run>/snapshots/minute_MMM.mm.ckpt`` each time another ``every_minutes`` of training have
passed (measured from the start of the first training batch, so start-up is not counted but
everything during training is: evaluations, pictures, checkpoints). The files are Lightning
checkpoints without optimizer state, so ``evaluate ckpt_path=...`` and ``sample`` read them.

``benchmarks/quality_curve.py`` adds it to each run it trains; add it to any run with
``+callbacks.snapshots._target_=gan_lightning.callbacks.snapshots.TimedSnapshots``.

Lightning's ``ModelCheckpoint(train_time_interval=...)`` would do the saving, but not for this
project's module: under manual optimization (two optimizers, ``automatic_optimization=False``)
its batch-end hook looks only at ``every_n_train_steps``, never at the clock, so it saves
nothing (Lightning 2.6.6; Lightning-AI/pytorch-lightning#21699 proposes the fix, and
tests/test_snapshots.py says when a release has it). Its file names could not hold the
minute either, which is the curve's x, and it records no end time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl

from gan_lightning.rules import Rule, number_in, refuse_broken

#: Minutes from the first training batch to the end of training, written at the end.
END_FILE = "train_minutes.txt"


class TimedSnapshots(pl.Callback):
    """Saves ``minute_MMM.mm.ckpt`` (the mark passed, in minutes) every ``every_minutes``."""

    #: Its setting's check: ``config.validate`` reads it from the class the entry's
    #: ``_target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "callbacks.snapshots.every_minutes",
            number_in(0, include_low=False),
            "a number > 0 (minutes of training between snapshots, e.g. 1)",
        ),
    )

    def __init__(self, every_minutes: float = 1.0, dirname: str = "snapshots") -> None:
        refuse_broken(self.RULES, {"callbacks.snapshots.every_minutes": every_minutes})
        self.every_minutes = every_minutes
        self.dirname = dirname
        self._start: float | None = None
        self._saved = 0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._start is None:
            self._start = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        assert self._start is not None
        minutes = (time.monotonic() - self._start) / 60.0
        if minutes < (self._saved + 1) * self.every_minutes or not trainer.is_global_zero:
            return
        # Several marks may pass during one long epoch end: one file, named by the time it is.
        self._saved = int(minutes // self.every_minutes)
        folder = Path(trainer.default_root_dir) / self.dirname
        name = f"minute_{self._saved * self.every_minutes:06.2f}.ckpt"
        trainer.save_checkpoint(folder / name, weights_only=True)

    def on_train_end(self, trainer: pl.Trainer, *args: Any) -> None:
        """Record how long training really ran: the x of the curve's final point."""
        if self._start is None or not trainer.is_global_zero:
            return
        folder = Path(trainer.default_root_dir) / self.dirname
        folder.mkdir(parents=True, exist_ok=True)
        minutes = (time.monotonic() - self._start) / 60.0
        (folder / END_FILE).write_text(f"{minutes:.4f}\n")
