"""IDX files (the MNIST family's format): reading, writing and finding them on disk.

The reader checks everything it can before trusting a file, because a bad download or a wrong
folder otherwise surfaces much later as a shape error deep inside a training step. Every such
problem raises :class:`DataError` with a message naming the file (or folder) and the fix.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gan_lightning.errors import DataError

_UNSIGNED_BYTE = 0x08
_IMAGE_SIDE = 28
_NUM_CLASSES = 10
# Logical split name -> file prefix used by every MNIST-like dataset.
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_FIX_HINT = (
    "Point the project at the folder that holds them: set GAN_DATA_DIR or pass data.root=..., "
    "or run with internet access and data.download=true so torchvision downloads them."
)


class MissingDataError(DataError):
    """The files are simply not there, a case a download can cure (unlike a corrupt file).

    ``problem`` keeps the message without the generic fix, so a caller that already tried the
    fix (a download) can give more specific advice.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} {_FIX_HINT}")
        self.problem = problem


def read_idx(path: str | Path) -> torch.Tensor:
    """Read a plain or ``.gz`` IDX file of unsigned bytes into a uint8 tensor of its shape."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError as err:
        raise MissingDataError(f"IDX file {path} does not exist.") from err
    except PermissionError as err:
        raise DataError(
            f"IDX file {path} is not readable (permission denied); fix its permissions."
        ) from err
    except (OSError, EOFError, zlib.error) as err:
        # gzip signals a cut-off or damaged archive with any of these.
        raise DataError(
            f"IDX file {path} is not a valid gzip archive ({err}); delete it and download it again."
        ) from err

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{path} is not an IDX file: its magic number {raw[:4].hex() or '(empty)'} does not "
            "start with two zero bytes; check that the path points at an MNIST-style IDX file."
        )
    if raw[2] != _UNSIGNED_BYTE:
        raise DataError(
            f"IDX file {path} stores data type 0x{raw[2]:02x}, but only unsigned bytes (0x08) are "
            "supported; use the original MNIST-style files."
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise DataError(
            f"IDX file {path} has a broken header ({ndim} dimensions, {len(raw)} bytes in all); "
            "delete it and download it again."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = math.prod(shape)
    found = len(raw) - header_size
    if found != expected:
        raise DataError(
            f"IDX file {path} is truncated or padded: its header {list(shape)} promises "
            f"{expected} data bytes but it holds {found}; delete it and download it again."
        )
    # np.frombuffer over the immutable bytes is read-only; one copy makes it a normal tensor.
    array = np.frombuffer(raw, dtype=np.uint8, count=expected, offset=header_size)
    return torch.from_numpy(array.reshape(shape).copy())


def write_idx(path: str | Path, tensor: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file, gzip-compressed when ``path`` ends in ``.gz``."""
    if tensor.dtype != torch.uint8:
        raise TypeError(f"write_idx stores unsigned bytes only, got a {tensor.dtype} tensor")
    if not 1 <= tensor.ndim <= 255:
        raise ValueError(f"IDX holds 1 to 255 dimensions, got a {tensor.ndim}-d tensor")
    path = Path(path)
    header = bytes([0, 0, _UNSIGNED_BYTE, tensor.ndim]) + struct.pack(
        f">{tensor.ndim}I", *tensor.shape
    )
    payload = header + tensor.detach().cpu().contiguous().numpy().tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def _search_dirs(root: str | Path, folder_names: Sequence[str]) -> list[Path]:
    """Folders that may hold a split, most specific first: torchvision's layout, then flat ones."""
    root = Path(root).expanduser()
    dirs = [d for name in folder_names for d in (root / name / "raw", root / name)]
    return [*dirs, root]


def _is_file(path: Path) -> bool:
    # Path.is_file lets PermissionError escape; turn it into a message about the folder.
    try:
        return path.is_file()
    except PermissionError as err:
        raise DataError(
            f"Data folder {path.parent} is not readable (permission denied); fix its permissions "
            "or point GAN_DATA_DIR / data.root=... elsewhere."
        ) from err


def _check_root(root: Path) -> None:
    """Reject roots that no download can fix, before looking for files inside them."""
    if root.exists() and not root.is_dir():
        raise DataError(
            f"Data root {root} is a file, not a folder. Set GAN_DATA_DIR or data.root=... to the "
            "folder that holds the dataset (e.g. the one containing MNIST/raw/)."
        )
    if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
        raise DataError(
            f"Data root {root} is not readable (permission denied); fix its permissions or set "
            "GAN_DATA_DIR / data.root=... to a readable folder."
        )


def find_split(root: str | Path, folder_names: Sequence[str], split: str) -> tuple[Path, Path]:
    """Return the (images, labels) files of ``split`` ("train" or "test") under ``root``.

    Both files must come from the same folder so images and labels can never be mixed across
    copies; within it the uncompressed file wins because it skips decompression.
    """
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split must be one of {sorted(_SPLIT_PREFIX)}, got {split!r}")
    root = Path(root).expanduser()
    _check_root(root)
    prefix = _SPLIT_PREFIX[split]
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    dirs = _search_dirs(root, folder_names)
    for folder in dirs:
        found = []
        for stem in stems:
            candidates = [p for p in (folder / stem, folder / f"{stem}.gz") if _is_file(p)]
            if not candidates:
                break
            found.append(candidates[0])
        else:
            return found[0], found[1]

    wanted = " and ".join(f"{s}[.gz]" for s in stems)
    looked = ", ".join(str(d) for d in dirs)
    if not root.exists():
        reason = f" (data root {root} does not exist)"
    elif not any(root.iterdir()):
        reason = f" (data root {root} is empty)"
    else:
        reason = ""
    raise MissingDataError(f"No {split} files ({wanted}) found{reason}; looked in: {looked}.")


def load_split(
    root: str | Path, folder_names: Sequence[str], split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a whole split as (uint8 images [N, 28, 28], int64 labels [N]), checked for sanity."""
    image_path, label_path = find_split(root, folder_names, split)
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or tuple(images.shape[1:]) != (_IMAGE_SIDE, _IMAGE_SIDE):
        raise DataError(
            f"Image file {image_path} holds images of shape {list(images.shape[1:])}, expected "
            f"[{_IMAGE_SIDE}, {_IMAGE_SIDE}]; point data.root at an MNIST-style dataset."
        )
    if labels.ndim != 1:
        raise DataError(
            f"Label file {label_path} has shape {list(labels.shape)}, expected one label per "
            "image; point data.root at an MNIST-style dataset."
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"Image file {image_path} holds {images.shape[0]} images but label file {label_path} "
            f"holds {labels.shape[0]} labels; the two files come from different downloads. "
            "Delete both and download them again."
        )
    if images.shape[0] == 0:
        raise DataError(f"Image file {image_path} holds no images; download it again.")
    if int(labels.max()) >= _NUM_CLASSES:
        bad = int(torch.nonzero(labels >= _NUM_CLASSES)[0, 0])
        raise DataError(
            f"Label file {label_path} has label {int(labels[bad])} at index {bad}; labels must "
            f"be 0..{_NUM_CLASSES - 1}. Delete it and download it again."
        )
    return images, labels.long()
