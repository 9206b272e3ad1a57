"""Estimate what a run writes, and warn at start when its disk holds less.

The start-up write probe (``ensure_writable``) catches a disk that is already full; this
catches one that will fill up an epoch later, when a run's checkpoints and pictures no longer
fit. It only warns: the estimate is an upper bound, and a run that stops with a full disk keeps
its last good checkpoint anyway.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from torch import nn

log = logging.getLogger(__name__)

#: Adam keeps two moments per parameter; SGD with momentum one, plain SGD none.
OPTIMIZER_STATES_PER_PARAMETER = 2


@dataclass(frozen=True)
class RunSize:
    checkpoint_bytes: int  # one checkpoint file
    checkpoint_files: int  # how many can exist at once
    picture_bytes: int

    @property
    def total(self) -> int:
        return self.checkpoint_bytes * self.checkpoint_files + self.picture_bytes


def megabytes(count: float) -> str:
    return f"{count / 2**20:,.0f} MB" if count >= 2**20 else f"{count / 2**20:.2f} MB"


def checkpoint_files(cfg: DictConfig) -> int:
    """Checkpoints on disk at the worst moment: the epoch files kept, a new one written before
    the oldest is deleted (a temporary file first), ``last.ckpt`` and ``interrupted.ckpt``."""
    epochs = int(cfg.trainer.max_epochs)
    spec = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    top_k = int(spec.get("save_top_k", 1))
    kept = epochs if top_k < 0 else min(top_k, epochs)
    return kept + 1 + int(bool(spec.get("save_last", False))) + 1


def estimate_run_bytes(module: nn.Module, cfg: DictConfig) -> RunSize:
    """An upper bound on what the run writes: checkpoints and uncompressed picture grids."""
    state = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    parameters = sum(p.numel() * p.element_size() for p in module.parameters())
    checkpoint = state + OPTIMIZER_STATES_PER_PARAMETER * parameters
    side = int(cfg.data.image_size)
    grid = int(cfg.num_fixed_samples) * 3 * (side + 2) ** 2  # RGB with make_grid's padding
    # Each epoch: a PNG in samples/ and the same grid in TensorBoard; at the end, the GIF of
    # those grids and a handful of final pictures.
    pictures = grid * (3 * int(cfg.trainer.max_epochs) + 10)
    return RunSize(checkpoint, checkpoint_files(cfg), pictures)


def warn_if_short_of_space(folder: Path, size: RunSize) -> None:
    """Log a warning when the disk holding ``folder`` has less free space than ``size``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free >= size.total:
        return
    log.warning(
        "The disk holding %s has %s free, and this run may write up to %s (%d checkpoints of "
        "%s at once, plus pictures): it may fill up mid-run. Its checkpoints stay good if it "
        "does, but free some space now or write elsewhere with paths.log_dir=<folder>.",
        folder,
        megabytes(free),
        megabytes(size.total),
        size.checkpoint_files,
        megabytes(size.checkpoint_bytes),
    )
