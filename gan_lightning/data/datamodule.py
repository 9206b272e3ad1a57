"""Lightning data modules that hold every split whole, as one uint8 tensor: the base and MNIST.

MNIST is tiny (47 MB as uint8), so per-sample ``__getitem__``, PIL transforms and worker
processes would cost far more than the data itself. Instead each split is read once into a
uint8 tensor (moved to the GPU when training there), batches are gathered with one index
tensor, and scaling to [-1, 1] happens on the fly on whole batches.

:class:`WholeTensorDataModule` does all of that for any source; a subclass only reads its
train and test images (:meth:`~WholeTensorDataModule.read_splits`). :class:`MNISTDataModule`
reads IDX files; ``data/folder.py`` and ``data/npz.py`` read the user's own images.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset, Sampler

from gan_lightning.data.idx import MissingDataError, find_split, load_split
from gan_lightning.errors import DataError
from gan_lightning.rules import (
    Rule,
    int_at_least,
    is_bool,
    is_int,
    null_or,
    number_in,
    one_of,
    refuse_broken,
)

log = logging.getLogger(__name__)

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


#: The side every network here is built around. Models at 32 px (the DCGAN) see these images
#: padded by 2 px of background, and the classifier and the metrics crop the padding off again,
#: so every source is brought to 28x28 first, whatever the model.
NATIVE_SIZE = 28
#: The label of every image of a source without labels. Anything that reads it as a class
#: (``one_hot``, ``cross_entropy``) fails at once instead of training on a made-up class.
NO_LABEL = -1

#: Settings every whole-tensor data module takes: a subclass lists them in its ``RULES`` (for
#: ``config.validate``), and :class:`WholeTensorDataModule`'s constructor checks their values.
COMMON_RULES: tuple[Rule, ...] = (
    Rule(
        "data.image_size",
        one_of((28, 32)),
        "28, or 32 to pad the 28x28 images by 2 pixels per side",
    ),
    Rule("data.batch_size", int_at_least(1), "an integer >= 1"),
    Rule("data.val_fraction", number_in(0, 1, include_high=False), "a number in [0, 1)"),
    Rule("data.split_seed", is_int, "an integer"),
    Rule("data.drop_last", is_bool, "true or false"),
)

Split = tuple[torch.Tensor, torch.Tensor]


def pad_to(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """28x28 uint8 images [N, C, 28, 28] padded with background (0, -1 after scaling) to
    ``image_size``; done once at setup, not on every batch."""
    pad = (image_size - images.shape[-1]) // 2
    return F.pad(images, (pad, pad, pad, pad), value=0)


class WholeTensorDataModule(pl.LightningDataModule):
    """Every split as one uint8 tensor, batched by index, with a seeded train/val partition.

    A subclass says where its images come from: :meth:`read_splits` returns the train and
    test images at ``image_size``, and :attr:`class_names`, :attr:`channels`, :attr:`source`
    and :attr:`dataset` describe them. Everything else (the validation hold-out, the GPU copy,
    the loaders, the checks a model must pass against the data) is shared, so a folder of PNG
    files trains exactly as the IDX files do.

    Args:
        image_size: 28, or 32 to pad 2 background pixels per side once at setup (for DCGANs
            whose strided convolutions want a power of two).
        batch_size: images per training, validation and test batch.
        val_fraction: share of the training split held out for validation, in [0, 1); 0 (a
            GAN run) holds none out and offers Lightning no val loader.
        split_seed: seeds the train/val partition and, with the epoch, the batch order.
        drop_last: drop the last short training batch so every step sees ``batch_size`` images.
        settings: the subclass's own ``data`` values by key (``{"data.root": root, ...}``),
            checked with the shared ones in one pass over :attr:`RULES`, so every broken value
            is reported at once, in the table's order, before anything is set up.
    """

    #: Every ``data`` key the module takes, with its check: ``config.validate`` reads them from
    #: the class ``data._target_`` names, and the constructor refuses the same values. A
    #: subclass lists its own keys with :data:`COMMON_RULES`.
    RULES: ClassVar[tuple[Rule, ...]] = COMMON_RULES

    #: The name runs and the classifier's weights file know this data by (``data.dataset``).
    dataset: str
    #: One name per class, in label order; empty for a source without labels.
    class_names: Sequence[str]
    #: 1 (grayscale) or 3 (RGB) channels per image.
    channels: int = 1

    def __init__(
        self,
        *,
        image_size: int,
        batch_size: int,
        val_fraction: float,
        split_seed: int,
        drop_last: bool,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        values = {
            "data.image_size": image_size,
            "data.batch_size": batch_size,
            "data.val_fraction": val_fraction,
            "data.split_seed": split_seed,
            "data.drop_last": drop_last,
            **(settings or {}),
        }
        refuse_broken(self.RULES, values, error=DataError)
        super().__init__()
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.drop_last = drop_last
        # split name -> (uint8 images [N, C, S, S], int64 labels [N]); filled by setup().
        self._splits: dict[str, Split] = {}
        if val_fraction > 0:
            # Offered only with images held out, and per instance, as Lightning's own
            # ``LightningDataModule.from_datasets`` offers the loaders it has data for: Lightning
            # counts a val loader as given when ``val_dataloader`` is overridden, so a class
            # method would tell every GAN run (val_fraction 0, no validation_step) that it
            # passed in a val_dataloader it cannot use.
            self.val_dataloader = self._val_dataloader

    # ------------------------------------------------------------------ what a subclass gives
    @property
    def source(self) -> str:
        """The file or folder the images come from, as messages name it."""
        raise NotImplementedError

    def read_splits(self) -> tuple[Split, Split]:
        """(train, test), each (uint8 images [N, C, S, S] at ``image_size``, int64 labels [N],
        ``NO_LABEL`` throughout when the source has none); :class:`DataError` if unreadable."""
        raise NotImplementedError

    # ------------------------------------------------------------------ what the data holds
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labeled(self) -> bool:
        return self.num_classes > 0

    def require_labels(self, purpose: str) -> None:
        """Refuse ``purpose`` (what needs the labels, for the message) on a source without."""
        if not self.labeled:
            raise DataError(
                f"{purpose} needs labeled images, but {self.source} has no labels. Put the "
                "images in one subfolder per class (data=folder), or add a `labels` array "
                "(data=npz)."
            )

    def check_generator(self, num_classes: int, channels: int) -> None:
        """Refuse, before any training, a generator that cannot learn from this data: one that
        draws another number of channels, or a conditional one whose classes are not this
        data's (a conditional model on data without labels above all)."""
        if channels != self.channels:
            raise DataError(
                f"The data has {self.channels}-channel images (data.channels={self.channels}) "
                f"but the model's generator draws {channels}-channel ones. Only models with a "
                "`channels` setting (model=dcgan28 and model=cgan, as experiment=best and "
                "experiment=best_conditional use them) draw colour; or set data.channels=1."
            )
        if not num_classes:
            return
        self.require_labels(f"A conditional model (model.num_classes={num_classes})")
        if num_classes != self.num_classes:
            shown = ", ".join(self.class_names[:12]) + (", ..." if self.num_classes > 12 else "")
            raise DataError(
                f"model.num_classes={num_classes}, but {self.source} has {self.num_classes} "
                f"classes ({shown}); add model.num_classes={self.num_classes}."
            )

    # ------------------------------------------------------------------ Lightning's hooks
    def setup(self, stage: str | None = None) -> None:
        """Read every split once, whatever the stage, so metrics can use any split at any time."""
        if not self._splits:
            self._splits = self._partition(*self.read_splits())
        trainer = self.trainer
        if stage == "fit" and not self.labeled and (trainer is None or trainer.is_global_zero):
            log.warning(
                "%s has no labels: the GAN trains on it, but the classifier-based metrics (FID "
                "with our classifier, class balance, conditional accuracy) need labeled images. "
                "For them, put the images in one subfolder per class.",
                self.source,
            )
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        if device.type == "cuda":
            # Data resident on the GPU: batches are gathered there, with no host transfer.
            self._splits = {
                name: (images.to(device), labels.to(device))
                for name, (images, labels) in self._splits.items()
            }

    def _partition(self, train: Split, test: Split) -> dict[str, Split]:
        """Hold ``val_fraction`` of the training images out for validation, by ``split_seed``."""
        train_images, train_labels = train
        num_val = round(train_images.shape[0] * self.val_fraction)
        generator = torch.Generator().manual_seed(self.split_seed)
        order = torch.randperm(train_images.shape[0], generator=generator)
        # Sorted so "the first n images" of a partition keep the source's order.
        val_index = order[:num_val].sort().values
        train_index = order[num_val:].sort().values
        num_train = train_index.shape[0]
        if self.batch_size > num_train:
            raise DataError(
                f"data.batch_size={self.batch_size} is larger than the {num_train} training "
                f"images left after holding out data.val_fraction={self.val_fraction}; "
                "lower data.batch_size."
            )
        return {
            "train": (train_images[train_index], train_labels[train_index]),
            "val": (train_images[val_index], train_labels[val_index]),
            "test": test,
        }

    def split_tensors(self, split: str) -> Split:
        """The whole split as (uint8 images [N, C, S, S], int64 labels [N]) on the data's device."""
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if not self._splits:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its data is used")
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

    def _val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)


_MNIST_CLASSES = 10


class MNISTDataModule(WholeTensorDataModule):
    """MNIST or Fashion-MNIST from IDX files, as whole-split tensors.

    Args:
        root: folder holding ``<dataset>/raw/`` (torchvision's layout) or the IDX files directly.
        dataset: ``MNIST`` or ``FashionMNIST``; also the torchvision class used to download.
        image_size, batch_size, val_fraction, split_seed, drop_last: as
            :class:`WholeTensorDataModule` takes them.
        download: let torchvision download the files when they are missing.
        class_names: names of the 10 classes for plots; the digits when not given.
    """

    #: The one home of the MNIST ``data`` settings' checks: ``config.validate`` reads them from
    #: the class ``data._target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("data.dataset", one_of(tuple(_FOLDERS)), "one of " + ", ".join(_FOLDERS)),
        *COMMON_RULES,
        Rule("data.download", is_bool, "true or false"),
        Rule(
            "data.class_names",
            null_or(
                lambda names: (
                    isinstance(names, Sequence)
                    and len(names) == _MNIST_CLASSES
                    and all(isinstance(name, str) for name in names)
                )
            ),
            "null (the digits) or 10 names, one per label",
        ),
    )

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
        super().__init__(
            image_size=image_size,
            batch_size=batch_size,
            val_fraction=val_fraction,
            split_seed=split_seed,
            drop_last=drop_last,
            settings={
                "data.dataset": dataset,
                "data.download": download,
                "data.class_names": class_names,
            },
        )
        self.save_hyperparameters()
        self.root = root
        self.dataset = dataset
        self.download = download
        self.class_names = (
            list(class_names) if class_names else [str(i) for i in range(_MNIST_CLASSES)]
        )
        self._folders = _FOLDERS[dataset]

    @property
    def source(self) -> str:
        return f"{self.dataset} in {self.root}"

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

    def read_splits(self) -> tuple[Split, Split]:
        train_images, train_labels = load_split(self.root, self._folders, "train")
        test_images, test_labels = load_split(self.root, self._folders, "test")
        return (
            (pad_to(train_images.unsqueeze(1), self.image_size), train_labels),
            (pad_to(test_images.unsqueeze(1), self.image_size), test_labels),
        )
