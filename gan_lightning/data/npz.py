"""``data=npz``: images (and labels) from the ``.npz`` files ``python -m gan_lightning.sample``
writes, so a generated set can be trained on or judged like any other data.

The format (docs/sampling.md, "Sample file format"): ``images`` uint8 ``[N, H, W]`` or
``[N, H, W, C]`` (C = 1 or 3), pixels 0..255, and optionally ``labels``, integers ``[N]`` from
0. Every array is checked before it is trusted, since a float array or a label past the last
class would otherwise surface deep inside a training step; each problem names the file and
the fix.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from gan_lightning.data.datamodule import (
    COMMON_RULES,
    NATIVE_SIZE,
    NO_LABEL,
    Split,
    WholeTensorDataModule,
    pad_to,
)
from gan_lightning.data.images import MODES, fit_image
from gan_lightning.data.splits import hold_out
from gan_lightning.errors import DataError
from gan_lightning.rules import Rule, is_bool, null_or, number_in, one_of

_FORMAT = (
    "the format `python -m gan_lightning.sample` writes: `images` uint8 [N, H, W] or "
    "[N, H, W, C], optional `labels` integers [N]"
)


def load_arrays(path: Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (all when None; absent ones left out) of the ``.npz`` at ``path``,
    read without pickle, so a file cannot run code. Members are read one by one: asking for
    ``labels`` alone does not read the images."""
    if not path.is_file():
        raise DataError(f"No .npz file at {path}; check data.path / data.test_path.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path} is a single .npy array, not an .npz archive; {_FORMAT}.")
            wanted = archive.files if names is None else [n for n in names if n in archive.files]
            arrays = {name: archive[name] for name in wanted}
            arrays_held = archive.files
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        # ValueError: pickled (object) arrays, refused by allow_pickle=False, or a bad header.
        raise DataError(
            f"Cannot read {path} as an .npz archive ({error}); it is truncated, corrupt or "
            f"holds Python objects. Write it again in {_FORMAT}."
        ) from None
    if names is not None and "images" in names and "images" not in arrays:
        held = ", ".join(f"`{name}`" for name in arrays_held) or "no arrays"
        raise DataError(f"{path} has no `images` array (it holds {held}); {_FORMAT}.")
    return arrays


def checked_images(images: np.ndarray, path: Path) -> np.ndarray:
    """``images`` as it must be: uint8 pixels, [N, H, W] or [N, H, W, C] with C 1 or 3, N > 0."""
    if images.dtype != np.uint8:
        nan = " with NaNs" if images.dtype.kind in "fc" and np.isnan(images).any() else ""
        raise DataError(
            f"`images` in {path} holds {images.dtype}{nan}, but pixels must be uint8 0..255. "
            "Convert it, e.g. from floats in [0, 1]: "
            "np.clip(np.round(images * 255), 0, 255).astype(np.uint8)."
        )
    shape_ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in MODES)
    if not shape_ok or images.shape[0] == 0:
        raise DataError(
            f"`images` in {path} has shape {list(images.shape)}; it must be [N, H, W] or "
            "[N, H, W, C] with C = 1 or 3 channels last, and N >= 1."
        )
    return images


def checked_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    """``labels`` as int64 [N] of class numbers 0, 1, ..."""
    if labels.dtype.kind not in "iu":
        raise DataError(
            f"`labels` in {path} holds {labels.dtype}, but labels must be integers (class 0, 1, "
            "...); convert them, e.g. labels.astype(np.int64), or drop the array."
        )
    if labels.ndim != 1:
        raise DataError(
            f"`labels` in {path} has shape {list(labels.shape)}; it must be [N], one per image."
        )
    labels = labels.astype(np.int64)
    if (labels < 0).any():
        index = int(np.argmax(labels < 0))
        raise DataError(
            f"`labels` in {path} has label {labels[index]} at index {index}, out of range: "
            "classes are numbered 0, 1, 2, ..."
        )
    return labels


def count_classes(labels: np.ndarray, path: Path) -> int:
    """The classes of a training file, 0..K-1, each with two images or more."""
    counts = np.bincount(labels)
    few = np.flatnonzero(counts < 2)
    if few.size:
        label = int(few[0])
        raise DataError(
            f"`labels` in {path} has {counts[label]} image(s) of class {label} (classes run 0.."
            f"{counts.size - 1}); every class needs at least 2, one to train on and one to test "
            "with. Number the classes 0..K-1 without gaps, and give each more images."
        )
    return int(counts.size)


def to_pixels(images: np.ndarray, path: Path, channels: int, resize: bool) -> torch.Tensor:
    """uint8 [N, H, W(, C)] as uint8 [N, channels, 28, 28]. Pillow converts and resizes, as for
    image files, only the arrays that are not already that."""
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] == (NATIVE_SIZE, NATIVE_SIZE, channels):
        return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    mode = MODES[images.shape[-1]]
    pixels = np.empty((images.shape[0], channels, NATIVE_SIZE, NATIVE_SIZE), np.uint8)
    for index, image in enumerate(images):
        picture = Image.fromarray(image[..., 0] if mode == "L" else image, mode)
        name = f"image {index} of `images` in {path}"
        pixels[index] = fit_image(picture, NATIVE_SIZE, channels, resize, name)
    return torch.from_numpy(pixels)


class NpzDataModule(WholeTensorDataModule):
    """Images (and labels) from an ``.npz`` file, the format ``sample`` writes.

    Args:
        path: the training ``.npz``.
        test_path: the test ``.npz`` (the metrics' real images); without one, ``test_fraction``
            of ``path``'s images are held out, the same share of each class, by ``split_seed``.
        dataset: the name of this data set: the classifier trained on it is saved as
            ``<dataset>_classifier.pt``, so give each data set its own.
        channels: 1 (grayscale) or 3 (RGB); arrays of the other kind are converted.
        resize: bring images of another size to 28x28 (centre crop, Lanczos); off, they must
            be 28x28 already.
        image_size, batch_size, val_fraction, split_seed, drop_last: as
            :class:`~gan_lightning.data.datamodule.WholeTensorDataModule` takes them.
    """

    #: The one home of the npz ``data`` settings' checks: ``config.validate`` reads them from
    #: the class ``data._target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "data.path",
            lambda path: isinstance(path, str) and path != "",
            "your .npz file: data=npz data.path=/path/to/images.npz",
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
            "data.test_path",
            null_or(lambda path: isinstance(path, str) and path != ""),
            "null or an .npz file",
        ),
    )

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        dataset: str = "npz",
        image_size: int = 28,
        channels: int = 1,
        resize: bool = True,
        batch_size: int = 64,
        val_fraction: float = 0.0,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        super().__init__(
            image_size=image_size,
            batch_size=batch_size,
            val_fraction=val_fraction,
            split_seed=split_seed,
            drop_last=drop_last,
            settings={
                "data.path": path,
                "data.dataset": dataset,
                "data.channels": channels,
                "data.resize": resize,
                "data.test_fraction": test_fraction,
                "data.test_path": test_path,
            },
        )
        self.save_hyperparameters()
        self.path = Path(path).expanduser()
        self.test_path = Path(test_path).expanduser() if test_path else None
        self.dataset = dataset
        self.channels = channels
        self.resize = resize
        self.test_fraction = test_fraction
        self._class_names: list[str] | None = None

    @property
    def source(self) -> str:
        return f"npz file {self.path}"

    @property
    def class_names(self) -> list[str]:  # type: ignore[override]
        """'0', '1', ...: read from the training file's labels alone, without its images."""
        if self._class_names is None:
            labels = load_arrays(self.path, ("labels",)).get("labels")
            count = 0
            if labels is not None:
                count = count_classes(checked_labels(labels, self.path), self.path)
            self._class_names = [str(label) for label in range(count)]
        return self._class_names

    def _read(self, path: Path) -> Split:
        """One file's (images [N, C, S, S], labels [N]), checked, at ``image_size``."""
        arrays = load_arrays(path, ("images", "labels"))
        images = checked_images(arrays["images"], path)
        count = images.shape[0]
        if "labels" not in arrays:
            labels = torch.full((count,), NO_LABEL, dtype=torch.long)
        else:
            label_array = checked_labels(arrays["labels"], path)
            if label_array.shape[0] != count:
                raise DataError(
                    f"`labels` in {path} holds {label_array.shape[0]} labels but `images` holds "
                    f"{count} images: one label per image."
                )
            labels = torch.from_numpy(label_array)
        pixels = to_pixels(images, path, self.channels, self.resize)
        return pad_to(pixels, self.image_size), labels

    def read_splits(self) -> tuple[Split, Split]:
        num_classes = self.num_classes  # every class has two images or more, or DataError
        images, labels = self._read(self.path)
        if self.test_path is None:
            train, test = hold_out(labels, self.test_fraction, self.split_seed, self.source)
            return (images[train], labels[train]), (images[test], labels[test])
        test_images, test_labels = self._read(self.test_path)
        test_labeled = bool((test_labels != NO_LABEL).any())
        if test_labeled != self.labeled:
            files = (self.path, self.test_path)
            has, lacks = files if self.labeled else reversed(files)
            raise DataError(f"{has} has `labels`, {lacks} has none: label both files or neither.")
        if test_labeled and int(test_labels.max()) >= num_classes:
            index = int(torch.argmax((test_labels >= num_classes).int()))
            raise DataError(
                f"`labels` in {self.test_path} has label {int(test_labels[index])} at index "
                f"{index}, out of range: the training file {self.path} has classes "
                f"0..{num_classes - 1}."
            )
        return (images, labels), (test_images, test_labels)
