"""Decoded image folders kept on disk, so only the first run of a folder pays for decoding.

A cache file belongs to one folder and one set of decoding settings. Its key hashes the folder's
path, every image's path, size and modification time, and the settings (size, channels,
resize): adding, removing, replacing or touching an image, or asking for colour instead of
gray, makes a new key, so stale pixels are never served. The key is also stored inside the
file and compared on load, and a file that cannot be read back whole (a killed write, a full
disk, a flipped bit: the zip format checks each member's CRC) is decoded again, never trusted.
Files are written to a temporary name and renamed, so a reader sees the old file or the new
one, never half of one; the older files of the same folder are removed then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gan_lightning.data.npz import load_arrays
from gan_lightning.errors import DataError

log = logging.getLogger(__name__)

#: Bump when the decoding changes what pixels a file gives: every older cache is then missed.
FORMAT_VERSION = 1


def cache_key(
    root: Path, files: Iterable[tuple[str, int, int]], settings: dict[str, object]
) -> str:
    """SHA-256 of the folder, its files as (relative path, bytes, mtime in ns), and settings."""
    digest = hashlib.sha256(_slot(root, settings).encode())
    for name, size, mtime_ns in files:
        digest.update(f"\n{name}\0{size}\0{mtime_ns}".encode())
    return digest.hexdigest()


def cache_path(cache_dir: Path, root: Path, settings: dict[str, object], key: str) -> Path:
    """``<cache_dir>/<folder name>-<slot>-<key>.npz``, where the slot hashes the folder and the
    settings: a new version of a folder replaces the old one's file, another setting does not."""
    folder = re.sub(r"[^A-Za-z0-9._-]", "_", root.name) or "root"
    slot = hashlib.sha256(_slot(root, settings).encode()).hexdigest()[:8]
    return cache_dir / f"{folder}-{slot}-{key[:20]}.npz"


def _slot(root: Path, settings: dict[str, object]) -> str:
    return json.dumps({"format": FORMAT_VERSION, "root": str(root), **settings}, sort_keys=True)


def load(path: Path, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached images, or None when there is no usable file (missing, foreign or broken)."""
    if not path.is_file():
        return None
    try:
        arrays = load_arrays(path, ("images", "key"))
    except DataError as error:
        log.warning("Decoding the images again: the cache file is unreadable. %s", error)
        return None
    images, stored = arrays["images"], arrays.get("key")
    if stored is None or str(stored) != key or images.dtype != np.uint8 or images.shape != shape:
        log.warning(
            "Decoding the images again: cache file %s does not hold this folder's images.", path
        )
        return None
    return images


def save(path: Path, key: str, images: np.ndarray) -> Path:
    """Write ``images`` under ``key`` atomically, then remove the folder's older cache files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.stem}.", suffix=".partial", delete=False
    ) as handle:
        try:
            np.savez(handle, images=images, key=np.array(key))
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    os.replace(handle.name, path)
    prefix = path.name.rsplit("-", 1)[0]  # <folder name>-<slot>
    for older in path.parent.glob(f"{prefix}-*.npz"):
        if older != path:
            older.unlink(missing_ok=True)
    return path
