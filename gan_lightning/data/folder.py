"""``data=folder``: the user's own image files, one subfolder per class, or flat without labels.

::

    my_digits/                    my_digits/                 my_photos/
      zero/ 0001.png ...            train/ zero/ one/ ...      0001.jpg
      one/  ...                     test/  zero/ one/ ...      0002.jpg ...

Sorted class folder names become the class names (labels 0, 1, ... in that order); a flat
folder is unlabeled data. With ``train/`` and ``test/`` the split is the user's; otherwise
``test_fraction`` of each class is held out (:func:`~gan_lightning.data.splits.hold_out`).
Images are decoded once, in parallel, into the uint8 tensor every data module holds, and the
result is cached outside the folder (:mod:`~gan_lightning.data.folder_cache`). Nothing is ever
written into the data folder.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gan_lightning.data import folder_cache
from gan_lightning.data.datamodule import (
    COMMON_RULES,
    NATIVE_SIZE,
    NO_LABEL,
    Split,
    WholeTensorDataModule,
    pad_to,
)
from gan_lightning.data.images import MODES, decode_files, default_workers, image_suffixes
from gan_lightning.data.splits import hold_out
from gan_lightning.errors import DataError
from gan_lightning.rules import (
    Rule,
    int_at_least,
    is_bool,
    null_or,
    number_in,
    one_of,
)

log = logging.getLogger(__name__)

#: Folders of at least this many images get a progress bar while they are decoded.
PROGRESS_FROM = 1000
_SPLIT_FOLDERS = ("train", "test")


@dataclass(frozen=True)
class ImageFile:
    path: Path
    label: int  # NO_LABEL in a flat folder
    size: int  # bytes
    mtime_ns: int


@dataclass(frozen=True)
class FolderLayout:
    """What a folder holds, read from its listing alone (no image is opened)."""

    root: Path
    class_names: tuple[str, ...]  # empty: a flat folder, no labels
    train: tuple[ImageFile, ...]
    test: tuple[ImageFile, ...] | None  # None: no test/ folder, a share of train is held out

    @property
    def files(self) -> tuple[ImageFile, ...]:
        return self.train + (self.test or ())


def _listing(folder: Path) -> list[os.DirEntry]:
    """The folder's entries by name, hidden ones (``.DS_Store``, ``.ipynb_checkpoints``) out."""
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    except PermissionError:
        raise DataError(
            f"Folder {folder} is not readable (permission denied); fix its permissions."
        ) from None


def _image(entry: os.DirEntry, label: int) -> ImageFile:
    stat = entry.stat()
    return ImageFile(Path(entry.path), label, stat.st_size, stat.st_mtime_ns)


def _images_below(folder: Path, label: int, suffixes: frozenset[str]) -> list[ImageFile]:
    """Every image in ``folder`` and its subfolders, by path: one class's images."""
    found = []
    for entry in _listing(folder):
        if entry.is_dir():
            found += _images_below(Path(entry.path), label, suffixes)
        elif entry.is_file() and Path(entry.name).suffix.lower() in suffixes:
            found.append(_image(entry, label))
    return found


def _survey_split(
    folder: Path, suffixes: frozenset[str], min_per_class: int
) -> tuple[tuple[str, ...], list[ImageFile]]:
    """(class names, images) of one folder of class folders, or of one flat folder. Test images
    are held out of it when ``min_per_class`` is 2: each class needs one left to train on."""
    entries = _listing(folder)
    classes = [e for e in entries if e.is_dir()]
    loose = [e for e in entries if e.is_file() and Path(e.name).suffix.lower() in suffixes]
    if classes and loose:
        raise DataError(
            f"{folder} holds both image files ({loose[0].name}, ...) and folders "
            f"({classes[0].name}/, ...). Put every image in a class folder for labeled data, "
            "or use a flat folder of images (no subfolders) for unlabeled data."
        )
    if not classes:
        if not loose:
            kinds = ", ".join(sorted(s for s in suffixes if s in {".png", ".jpg", ".jpeg"}))
            raise DataError(
                f"No images in {folder} (looked for {kinds} and every other format Pillow "
                "reads). Point data.root at a folder of images, one subfolder per class."
            )
        return (), [_image(entry, NO_LABEL) for entry in loose]
    images = []
    for label, entry in enumerate(classes):
        found = _images_below(Path(entry.path), label, suffixes)
        if not found:
            raise DataError(
                f"Class folder {entry.path} holds no images; add images or remove the folder."
            )
        if len(found) < min_per_class:
            raise DataError(
                f"Class folder {entry.path} holds a single image ({found[0].path.name}); every "
                f"class needs at least {min_per_class}, one to train on and one to test with "
                "(data.test_fraction holds test images out). Add images or remove the folder."
            )
        images += found
    return tuple(entry.name for entry in classes), images


def survey(root: Path) -> FolderLayout:
    """The layout of the folder at ``root``, or a :class:`DataError` saying what is wrong."""
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"data.root={root} {what}; point it at your folder of images.")
    suffixes = image_suffixes()
    entries = _listing(root)
    names = {entry.name for entry in entries if entry.is_dir()}
    if not names & set(_SPLIT_FOLDERS):
        classes, train = _survey_split(root, suffixes, min_per_class=2)
        if not classes and len(train) < 2:
            raise DataError(
                f"{root} holds a single image; holding out test images needs at least 2."
            )
        return FolderLayout(root, classes, tuple(train), None)
    others = sorted(entry.name for entry in entries if entry.name not in _SPLIT_FOLDERS)
    if not names >= set(_SPLIT_FOLDERS) or others:
        raise DataError(
            f"{root} has {', '.join(sorted(names & set(_SPLIT_FOLDERS)))}/ beside "
            f"{', '.join(others) or 'nothing else'}: a folder with its own split holds train/ "
            "and test/ and nothing else, each with the same class folders (or flat). Without "
            "test/, keep the class folders at the top and data.test_fraction holds images out."
        )
    classes, train = _survey_split(root / "train", suffixes, min_per_class=1)
    test_classes, test = _survey_split(root / "test", suffixes, min_per_class=1)
    if classes != test_classes:
        missing = sorted(set(classes) - set(test_classes)) or "-"
        extra = sorted(set(test_classes) - set(classes)) or "-"
        raise DataError(
            f"{root}/train and {root}/test must hold the same class folders; test/ lacks "
            f"{missing} and has {extra} beyond train/'s."
        )
    return FolderLayout(root, classes, tuple(train), tuple(test))


class ImageFolderDataModule(WholeTensorDataModule):
    """A folder of image files as whole-split tensors (see the module's docstring for layouts).

    Args:
        root: the folder of images.
        dataset: the name of this data set: the classifier trained on it is saved as
            ``<dataset>_classifier.pt``, so give each data set its own.
        channels: 1 (converted to grayscale) or 3 (RGB).
        resize: bring images of another size to 28x28 (centre crop, Lanczos); off, every image
            must be 28x28 already.
        test_fraction: without a ``test/`` folder, this share of each class is held out as
            the test split (the metrics' real images), by ``split_seed``.
        cache_dir: where decoded folders are kept (never inside ``root``); None: decode every
            run.
        decode_workers: processes decoding a large folder; None: one per CPU core.
        image_size, batch_size, val_fraction, split_seed, drop_last: as
            :class:`~gan_lightning.data.datamodule.WholeTensorDataModule` takes them.
    """

    #: The one home of the folder ``data`` settings' checks: ``config.validate`` reads them from
    #: the class ``data._target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "data.root",
            lambda root: isinstance(root, str) and root != "",
            "your folder of images: data=folder data.root=/path/to/images",
        ),
        Rule("data.dataset", lambda name: isinstance(name, str) and name != "", "a non-empty name"),
        *COMMON_RULES,
        Rule("data.channels", one_of(tuple(MODES)), "1 (grayscale) or 3 (RGB)"),
        Rule("data.resize", is_bool, "true or false"),
        Rule(
            "data.test_fraction",
            number_in(0, 1, include_low=False, include_high=False),
            "a number in (0, 1)",
        ),
        Rule(
            "data.cache_dir",
            null_or(lambda path: isinstance(path, str) and path != ""),
            "null (no cache) or a folder outside data.root",
        ),
        Rule(
            "data.decode_workers",
            null_or(int_at_least(0)),
            "null (one per CPU core) or an integer >= 0 (0 and 1: decode in this process)",
        ),
    )

    def __init__(
        self,
        root: str | None = None,
        dataset: str = "folder",
        image_size: int = 28,
        channels: int = 1,
        resize: bool = True,
        batch_size: int = 64,
        val_fraction: float = 0.0,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        drop_last: bool = True,
        cache_dir: str | None = None,
        decode_workers: int | None = None,
    ) -> None:
        super().__init__(
            image_size=image_size,
            batch_size=batch_size,
            val_fraction=val_fraction,
            split_seed=split_seed,
            drop_last=drop_last,
            settings={
                "data.root": root,
                "data.dataset": dataset,
                "data.channels": channels,
                "data.resize": resize,
                "data.test_fraction": test_fraction,
                "data.cache_dir": cache_dir,
                "data.decode_workers": decode_workers,
            },
        )
        self.save_hyperparameters()
        self.root = Path(root).expanduser().resolve()
        self.dataset = dataset
        self.channels = channels
        self.resize = resize
        self.test_fraction = test_fraction
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else None
        if self.cache_dir is not None and self.cache_dir.is_relative_to(self.root):
            raise DataError(
                f"data.cache_dir={self.cache_dir} lies inside data.root={self.root}, and nothing "
                "is ever written into your data folder; point data.cache_dir elsewhere (or run "
                "from another folder: the default cache lives in its outputs/)."
            )
        self.decode_workers = default_workers() if decode_workers is None else decode_workers
        self._layout: FolderLayout | None = None

    @property
    def source(self) -> str:
        return f"image folder {self.root}"

    @property
    def layout(self) -> FolderLayout:
        """The folder's layout, surveyed on first use (a listing: cheap even for 60,000 files)."""
        if self._layout is None:
            self._layout = survey(self.root)
        return self._layout

    @property
    def class_names(self) -> list[str]:  # type: ignore[override]
        return list(self.layout.class_names)

    def prepare_data(self) -> None:
        """Decode the folder into the cache once (Lightning runs this on one process per node),
        so that every process's :meth:`setup` only loads it."""
        if self.cache_dir is not None:
            self._pixels()

    def read_splits(self) -> tuple[Split, Split]:
        layout = self.layout
        images = pad_to(torch.from_numpy(self._pixels()), self.image_size)
        labels = torch.tensor([file.label for file in layout.files], dtype=torch.long)
        if layout.test is not None:
            cut = len(layout.train)
            return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])
        train, test = hold_out(labels, self.test_fraction, self.split_seed, self.source)
        return (images[train], labels[train]), (images[test], labels[test])

    def _pixels(self) -> np.ndarray:
        """Every image of the layout as uint8 [N, C, 28, 28]: from the cache, else decoded."""
        files = self.layout.files
        if self.cache_dir is None:
            return self._decode(files, cache=None)
        settings = {"size": NATIVE_SIZE, "channels": self.channels, "resize": self.resize}
        listing = ((str(f.path.relative_to(self.root)), f.size, f.mtime_ns) for f in files)
        key = folder_cache.cache_key(self.root, listing, settings)
        path = folder_cache.cache_path(self.cache_dir, self.root, settings, key)
        shape = (len(files), self.channels, NATIVE_SIZE, NATIVE_SIZE)
        pixels = folder_cache.load(path, key, shape)
        if pixels is None:
            pixels = self._decode(files, cache=path)
            try:
                folder_cache.save(path, key, pixels)
            except OSError as error:  # a full disk or a read-only cache folder: train anyway
                log.warning(
                    "Could not write the decoded images to %s (%s); the next run decodes the "
                    "folder again. Set data.cache_dir to a writable folder.",
                    path,
                    error,
                )
        return pixels

    def _decode(self, files: tuple[ImageFile, ...], cache: Path | None) -> np.ndarray:
        start = time.perf_counter()
        paths = [file.path for file in files]
        settings = (NATIVE_SIZE, self.channels, self.resize)
        where = f"; cached in {cache.parent}" if cache is not None else ""
        with Progress(
            TextColumn("decoding {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=len(paths) < PROGRESS_FROM,
        ) as progress:
            task = progress.add_task(str(self.root), total=len(paths))
            pixels = decode_files(
                paths,
                *settings,
                workers=self.decode_workers,
                advance=lambda count: progress.advance(task, count),
            )
        log.info(
            "Decoded %d images of %s in %.1f s%s.",
            len(paths),
            self.root,
            time.perf_counter() - start,
            where,
        )
        return pixels
