"""Data layer: IDX file I/O and the MNIST-family Lightning data module."""

from __future__ import annotations

from gan_lightning.data.datamodule import EpochBatchSampler, MNISTDataModule
from gan_lightning.data.idx import (
    MissingDataError,
    find_split,
    load_split,
    read_idx,
    write_idx,
)

__all__ = [
    "EpochBatchSampler",
    "MNISTDataModule",
    "MissingDataError",
    "find_split",
    "load_split",
    "read_idx",
    "write_idx",
]
