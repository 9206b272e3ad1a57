"""The data path alone: batches per second from the data module vs the seeds' DataLoader.

Nothing is trained; each loader is iterated, epoch after epoch, for a fixed number of batches.
This isolates what the contestants' loops only show mixed with compute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import hydra
import torch
from omegaconf import DictConfig

from contestants import seed_dataloader
from gan_lightning.data.datamodule import MNISTDataModule
from timing import clock


def _forever(loader: Iterable) -> Iterator:
    while True:
        yield from loader


def images_per_second(loader: Iterable, batches: int, warmup: int = 2) -> float:
    """Images per second over ``batches`` batches, after ``warmup`` untimed ones."""
    stream = _forever(loader)
    for _ in range(warmup):
        next(stream)
    images = 0
    start = clock(torch.device("cpu"))
    for _ in range(batches):
        images += next(stream)[0].shape[0]
    return images / (clock(torch.device("cpu")) - start)


def datamodule_loader(cfg: DictConfig) -> Iterable:
    datamodule: MNISTDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.train_dataloader()


def seed_loader(cfg: DictConfig, num_workers: int = 0) -> Iterable:
    return seed_dataloader(
        str(cfg.data.root), int(cfg.model.image_size), int(cfg.data.batch_size), num_workers
    )
