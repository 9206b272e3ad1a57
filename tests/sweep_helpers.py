"""Test callbacks for the sweep and DDP tests, named on the command line as
``+callbacks.<name>._target_=sweep_helpers.<Class>`` (the CLI tests put tests/ on PYTHONPATH)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytorch_lightning as pl
import torch


def digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class RankRecord(pl.Callback):
    """Writes ``<run>/rank_<r>.json``: the sampler this rank trained from, the indices it
    yielded each epoch, the RNG state the epoch started with, and the final weights' digest."""

    def __init__(self) -> None:
        self.record: dict = {"epochs": {}}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = trainer.train_dataloader.sampler
        indices = torch.cat(list(iter(sampler))).tolist()
        self.record.update(
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            sampler=type(sampler).__name__,
            sampler_rank=getattr(sampler, "rank", None),
        )
        self.record["epochs"][trainer.current_epoch] = {
            "indices": indices,
            "rng": digest(torch.get_rng_state()),
        }

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        weights = torch.cat([p.detach().flatten() for p in pl_module.parameters()])
        self.record["weights"] = digest(weights)
        path = Path(trainer.default_root_dir) / f"rank_{trainer.global_rank}.json"
        path.write_text(json.dumps(self.record))
