"""Image files and arrays to the uint8 pixels a data module holds: decoding, colour, size.

One function, :func:`fit_image`, turns a Pillow image into what the networks take (1 or 3
channels, 28x28), so a folder of files and an ``.npz`` array are brought to the same pixels by
the same code. Decoding many files runs in a pool of processes, one chunk of files per task.
Nothing here imports torch: the workers only ever need Pillow and numpy.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gan_lightning.errors import DataError

#: Pillow's mode for each channel count.
MODES = {1: "L", 3: "RGB"}
#: Files per task of the decoding pool: big enough that a task's overhead (pickling the paths
#: and the pixels back) is small next to decoding, small enough for a smooth progress bar.
CHUNK_SIZE = 500
#: Below this many files one process decodes them all: forking workers would cost more.
MIN_FILES_FOR_POOL = 2000

#: What a corrupt, truncated or foreign file makes Pillow raise (it has no one base class).
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def image_suffixes() -> frozenset[str]:
    """File name endings Pillow can open (``.png``, ``.jpg``, ``.webp``, ...), lower case."""
    Image.init()
    extensions = Image.registered_extensions()
    return frozenset(ext for ext, name in extensions.items() if name in Image.OPEN)


def fit_image(image: Image.Image, size: int, channels: int, resize: bool, name: str) -> np.ndarray:
    """``image`` as uint8 [channels, size, size]: converted to grayscale or RGB, and, when its
    size differs and ``resize`` is on, centre-cropped to a square and resized (Lanczos).

    The crop keeps the aspect ratio, as StyleGAN's dataset tool does: a stretched face or digit
    is a different picture. ``name`` (the file, or the array and index) goes into the error.
    """
    if image.size != (size, size):
        if not resize:
            width, height = image.size
            raise DataError(
                f"{name} is {width}x{height}, but with data.resize=false every image must already "
                f"be {size}x{size}, the size the networks take (a model of 32 px gets them "
                "padded). Set data.resize=true to resize them."
            )
        image = ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image.convert(MODES[channels]), dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def read_image(path: Path, size: int, channels: int, resize: bool) -> np.ndarray:
    """One file as uint8 [channels, size, size]; :class:`DataError` naming it if unreadable."""
    try:
        with Image.open(path) as image:
            # JPEG decodes straight to a fraction of its size when that is all that is needed.
            image.draft(MODES[channels], (size, size))
            # A phone photo is stored sideways with an EXIF note saying how to turn it; the
            # upright copy is fully decoded, so a truncated file fails here.
            upright = ImageOps.exif_transpose(image)
    except _UNREADABLE as error:
        raise DataError(
            f"Cannot read image {path} ({error}); it is truncated, corrupt or not an image. "
            "Replace or delete it."
        ) from None
    return fit_image(upright, size, channels, resize, str(path))


def read_images(paths: Sequence[Path], size: int, channels: int, resize: bool) -> np.ndarray:
    """Files as uint8 [N, channels, size, size], in order: one task of the decoding pool."""
    pixels = np.empty((len(paths), channels, size, size), dtype=np.uint8)
    for index, path in enumerate(paths):
        pixels[index] = read_image(path, size, channels, resize)
    return pixels


def _pool_context() -> multiprocessing.context.BaseContext | None:
    """Fork where the platform has it: a spawned worker would import the whole command again
    (torch, Lightning) before decoding a single file. Workers touch Pillow and numpy only, as
    DataLoader workers fork from the same process."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def default_workers() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_files(
    paths: Sequence[Path],
    size: int,
    channels: int,
    resize: bool,
    *,
    workers: int,
    advance: Callable[[int], None] = lambda count: None,
) -> np.ndarray:
    """Every file as uint8 [N, channels, size, size], in chunks over ``workers`` processes.

    ``advance(count)`` is called as each chunk of ``count`` files is done (a progress bar). The
    first unreadable file stops the whole decode with its :class:`DataError`.
    """
    chunks = [paths[start : start + CHUNK_SIZE] for start in range(0, len(paths), CHUNK_SIZE)]
    context = _pool_context()
    if workers <= 1 or len(paths) < MIN_FILES_FOR_POOL or context is None:
        parts = []
        for chunk in chunks:
            parts.append(read_images(chunk, size, channels, resize))
            advance(len(chunk))
        return np.concatenate(parts) if parts else np.empty((0, channels, size, size), np.uint8)
    parts = [np.empty(0)] * len(chunks)
    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
        futures = {
            pool.submit(read_images, chunk, size, channels, resize): index
            for index, chunk in enumerate(chunks)
        }
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    parts[futures[future]] = future.result()  # raises a worker's DataError
                    advance(len(chunks[futures[future]]))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return np.concatenate(parts)
