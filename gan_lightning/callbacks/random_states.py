"""The global random streams ride in every checkpoint, so a resumed run draws what an
uninterrupted one would have drawn: the same noise, label flips and augmentations, bit for bit.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def capture_rng_states() -> dict[str, Any]:
    """Every global RNG a training step may draw from, as tensors, lists and numbers.

    Those are the only types ``torch.load(weights_only=True)`` accepts, so numpy's and Python's
    tuples are taken apart here and put back together in :func:`restore_rng_states`.
    """
    name, keys, position, has_gauss, cached_gauss = np.random.get_state()
    version, python_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, keys.tolist(), position, has_gauss, cached_gauss],
        "python": [version, list(python_state), gauss],
    }


def restore_rng_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, position, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gauss))
    version, python_state, gauss = states["python"]
    random.setstate((version, tuple(python_state), gauss))


class RandomStates(pl.Callback):
    """Saves torch's (CPU and CUDA), numpy's and Python's global RNG states in each checkpoint,
    and puts them back when a run resumes from one.

    Lightning hands a checkpoint's states to :meth:`load_state_dict` before ``on_fit_start``;
    they are restored only in ``on_train_start``, after every set-up hook, so whatever set-up
    draws (a metric's reference sample, say) cannot shift the stream. Under DDP the states are
    rank zero's; :class:`~gan_lightning.callbacks.distributed.RankSeeds` reseeds every rank.
    """

    def __init__(self) -> None:
        self._pending: Mapping[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return capture_rng_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is not None:
            restore_rng_states(self._pending)
            self._pending = None
