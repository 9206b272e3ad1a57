"""Lightning data module for MNIST-like datasets, with the whole dataset held as one tensor.

MNIST is tiny (47 MB as uint8), so per-sample ``__getitem__``, PIL transforms and worker
processes would cost far more than the data itself. Instead each split is read once into a
uint8 tensor (moved to the GPU when training there), batches are gathered with one index
tensor, and scaling to [-1, 1] happens on the fly on whole batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset, Sampler

from gan_lightning.checks import (
    Rule,
    int_at_least,
    is_bool,
    is_int,
    number_in,
    one_of,
    refuse_broken,
)
from gan_lightning.data.idx import MissingDataError, find_split, load_split
from gan_lightning.errors import DataError

# Folders a dataset may live in under the root: torchvision's name, then Debian's.
_FOLDERS = {"MNIST": ("MNIST",), "FashionMNIST": ("FashionMNIST", "fashion-mnist")}
_SPLITS = ("train", "val", "test")


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels to float32 in [-1, 1], the range a tanh generator produces."""
    return images_uint8.float() / 127.5 - 1


class _WholeTensorDataset(Dataset):
    """A dataset indexed by a whole batch of indices at once, so one gather makes a batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_unit_range(self.images[index]), self.labels[index]


def _keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    # The default collate would turn the finished (images, labels) tuple into a list.
    return batch


class EpochBatchSampler(Sampler[torch.Tensor]):
    """Yields index tensors, one per batch, shuffled by a generator seeded with seed + epoch.

    Making the order a pure function of (seed, epoch), rather than of a global RNG's history,
    lets a run resumed from a checkpoint see exactly the batches the original run saw.
    Lightning calls :meth:`set_epoch` at the start of every epoch.

    With several processes (DDP, ``num_replicas`` > 1) every rank draws the same permutation
    and takes every ``num_replicas``-th batch of it, starting at its ``rank``: the shards are
    disjoint, each a pure function of (seed, epoch, rank), so resuming stays exact. Every rank
    gets the same number of full batches (a rank that ran out would hang the others in the
    gradient all-reduce): like ``DistributedSampler``, the order is padded by repeating its
    start when ``drop_last`` is off. Lightning's own distributed wrapper would reshuffle these
    batches with its own seed, so the trainer runs with ``use_distributed_sampler: false``.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
        device: torch.device | str = "cpu",
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank={rank} must be in [0, num_replicas={num_replicas})")
        self.num_items = num_items
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.device = torch.device(device)
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        per_step = self.batch_size * self.num_replicas  # images all ranks use per step
        if self.drop_last:
            return self.num_items // per_step
        return -(-self.num_items // per_step)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_items, generator=generator)
        else:
            order = torch.arange(self.num_items)
        needed = len(self) * self.batch_size * self.num_replicas
        if self.num_replicas > 1 and needed > self.num_items:
            order = order.repeat(-(-needed // self.num_items))[:needed]
        # One transfer per epoch instead of one per batch when the data lives on the GPU.
        order = order.to(self.device)
        step = self.batch_size * self.num_replicas
        for start in range(self.rank * self.batch_size, len(self) * step, step):
            yield order[start : start + self.batch_size]


#: The one home of the ``data`` settings' checks (``config.validate`` builds the data module).
RULES: tuple[Rule, ...] = (
    Rule("data.dataset", one_of(tuple(_FOLDERS)), "one of " + ", ".join(_FOLDERS)),
    Rule(
        "data.image_size",
        one_of((28, 32)),
        "28, or 32 to pad the 28x28 images by 2 pixels per side",
    ),
    Rule("data.batch_size", int_at_least(1), "an integer >= 1"),
    Rule("data.val_fraction", number_in(0, 1, include_high=False), "a number in [0, 1)"),
    Rule("data.split_seed", is_int, "an integer"),
    Rule("data.download", is_bool, "true or false"),
    Rule("data.drop_last", is_bool, "true or false"),
    Rule(
        "data.class_names",
        lambda names: (
            isinstance(names, Sequence)
            and len(names) == MNISTDataModule.num_classes
            and all(isinstance(name, str) for name in names)
        ),
        "null (the digits) or 10 names, one per label",
    ),
)


class MNISTDataModule(pl.LightningDataModule):
    """MNIST or Fashion-MNIST as whole-split tensors, with a seeded train/val partition.

    Args:
        root: folder holding ``<dataset>/raw/`` (torchvision's layout) or the IDX files directly.
        dataset: ``MNIST`` or ``FashionMNIST``; also the torchvision class used to download.
        image_size: 28, or 32 to pad 2 background pixels per side once at setup (for DCGANs
            whose strided convolutions want a power of two).
        batch_size: images per training, validation and test batch.
        val_fraction: share of the official training split held out for validation, in [0, 1).
        split_seed: seeds both the train/val partition and, with the epoch, the batch order.
        download: let torchvision download the files when they are missing.
        drop_last: drop the last short training batch so every step sees ``batch_size`` images.
        class_names: names of the 10 classes for plots; the digits when not given.
    """

    num_classes = 10

    def __init__(
        self,
        root: str,
        dataset: str = "MNIST",
        image_size: int = 28,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        download: bool = True,
        drop_last: bool = True,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        names = list(class_names) if class_names else [str(i) for i in range(self.num_classes)]
        settings = {
            "data.dataset": dataset,
            "data.image_size": image_size,
            "data.batch_size": batch_size,
            "data.val_fraction": val_fraction,
            "data.split_seed": split_seed,
            "data.download": download,
            "data.drop_last": drop_last,
            "data.class_names": names,
        }
        refuse_broken(RULES, settings, error=DataError)
        self.save_hyperparameters()
        self.root = root
        self.dataset = dataset
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.download = download
        self.drop_last = drop_last
        self.class_names = names
        self._folders = _FOLDERS[dataset]
        # split name -> (uint8 images [N, 1, S, S], int64 labels [N]); filled by setup().
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def prepare_data(self) -> None:
        """Download only when a split is missing, and explain where to put the files otherwise."""
        for split in ("train", "test"):
            try:
                find_split(self.root, self._folders, split)
            except MissingDataError as missing:
                if not self.download:
                    raise DataError(
                        f"{missing} (data.download=false, so nothing was downloaded.)"
                    ) from None
                self._download(split == "train", missing)

    def _download(self, train: bool, missing: MissingDataError) -> None:
        dataset_class = getattr(torchvision.datasets, self.dataset)
        try:
            dataset_class(self.root, train=train, download=True)
        except Exception as err:  # any failure here means "offline or blocked": same advice
            # torchvision's text lists every mirror URL and each one's error; its first line
            # ("Error downloading train-images-idx3-ubyte.gz") is all that helps here.
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(":")
            raise DataError(
                f"{missing.problem} Downloading {self.dataset} with torchvision failed too "
                f"({first_line}; offline?). Without internet access, put the files in one of "
                "those folders or set GAN_DATA_DIR / data.root=... to a folder that holds them."
            ) from err

    def setup(self, stage: str | None = None) -> None:
        """Read every split once, whatever the stage, so metrics can use any split at any time."""
        if not self._splits:
            self._load()
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        if device.type == "cuda":
            # Data resident on the GPU: batches are gathered there, with no host transfer.
            self._splits = {
                name: (images.to(device), labels.to(device))
                for name, (images, labels) in self._splits.items()
            }

    def _load(self) -> None:
        train_images, train_labels = load_split(self.root, self._folders, "train")
        test_images, test_labels = load_split(self.root, self._folders, "test")

        num_val = round(train_images.shape[0] * self.val_fraction)
        generator = torch.Generator().manual_seed(self.split_seed)
        order = torch.randperm(train_images.shape[0], generator=generator)
        # Sorted so "the first n images" of a partition keep the file's order.
        val_index = order[:num_val].sort().values
        train_index = order[num_val:].sort().values
        num_train = train_index.shape[0]
        if self.batch_size > num_train:
            raise DataError(
                f"data.batch_size={self.batch_size} is larger than the {num_train} training "
                f"images left after holding out data.val_fraction={self.val_fraction}; "
                "lower data.batch_size."
            )

        pad = (self.image_size - 28) // 2
        splits = {
            "train": (train_images[train_index], train_labels[train_index]),
            "val": (train_images[val_index], train_labels[val_index]),
            "test": (test_images, test_labels),
        }
        # Padding with 0 (background, -1 after scaling) is done here once, not on every batch.
        self._splits = {
            name: (F.pad(images.unsqueeze(1), (pad, pad, pad, pad), value=0), labels)
            for name, (images, labels) in splits.items()
        }

    def split_tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as (uint8 images [N, 1, S, S], int64 labels [N]) on the data's device."""
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if not self._splits:
            raise RuntimeError("MNISTDataModule.setup() must run before its data is used")
        return self._splits[split]

    def real_images(self, split: str, count: int | None = None) -> torch.Tensor:
        """The first ``count`` images of a split in [-1, 1], for metrics and picture grids."""
        images = self.split_tensors(split)[0]
        if count is not None and not 0 <= count <= images.shape[0]:
            raise DataError(
                f"Asked for {count} real images of the {split} split, which has {images.shape[0]}."
            )
        return to_unit_range(images[:count])

    @property
    def num_train(self) -> int:
        return self.split_tensors("train")[0].shape[0]

    @property
    def num_val(self) -> int:
        return self.split_tensors("val")[0].shape[0]

    @property
    def num_test(self) -> int:
        return self.split_tensors("test")[0].shape[0]

    def _loader(
        self, split: str, *, shuffle: bool, drop_last: bool, sharded: bool = False
    ) -> DataLoader:
        images, labels = self.split_tensors(split)
        trainer = self.trainer if sharded else None
        sampler = EpochBatchSampler(
            images.shape[0],
            self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=self.split_seed,
            device=images.device,
            # DDP: each rank its own shard of every epoch (metrics read whole splits directly).
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
        )
        if sharded and len(sampler) == 0:
            raise DataError(
                f"data.batch_size={self.batch_size} on each of {sampler.num_replicas} devices "
                f"needs more than the {images.shape[0]} {split} images for one full step; "
                "lower data.batch_size or use fewer devices."
            )
        # batch_size=None: the sampler already yields whole batches of indices.
        return DataLoader(
            _WholeTensorDataset(images, labels),
            batch_size=None,
            sampler=sampler,
            collate_fn=_keep_batch,
            # Its own generator: making an iterator each epoch must not draw from the global RNG,
            # or a resumed run (whose first iterator exists before the RNG states are restored)
            # would be one draw off from an uninterrupted one.
            generator=torch.Generator().manual_seed(self.split_seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=self.drop_last, sharded=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)
