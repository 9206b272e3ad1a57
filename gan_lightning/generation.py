"""Drawing from a trained generator: loading it, samples, latent walks, recognised digits.

The library half of ``python -m gan_lightning.sample``; ``evaluate`` and the notebooks load
generators through :func:`load_generator` too, and the end-of-training pictures draw with it.
Every function takes its randomness from an explicit seed or latents, so the same call draws
the same images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gan_lightning.errors import SampleError
from gan_lightning.gan.ema import sampling_copy
from gan_lightning.networks.latents import sample_latents
from gan_lightning.pictures import interpolate, save_grid
from gan_lightning.runs.checkpoints import (
    instantiate_network,
    load_checkpoint,
    load_state_strict,
    run_config,
    submodule_state,
)

MNIST_SIZE = 28
#: Channels a sample file or picture holds: grayscale or RGB.
CHANNELS = (1, 3)


def to_mnist_uint8(images: Tensor) -> Tensor:
    """[-1, 1] images [N, C, S, S] as uint8 [N, 28, 28] (C = 1) or [N, 28, 28, 3] (C = 3, RGB),
    the exact inverse of the data scaling.

    Colour goes channels last, as image files and ``data=npz`` hold it. Larger images are
    center-cropped: the data module pads MNIST by 2 px per side for 32x32 models, so the crop
    returns exactly the geometry of the real digits.
    """
    channels, size = images.shape[1], images.shape[-1]
    if channels not in CHANNELS:
        raise SampleError(
            f"generator makes {channels}-channel images; sample files and pictures hold 1 "
            "(grayscale) or 3 (RGB) channels"
        )
    if size < MNIST_SIZE:
        raise SampleError(f"generator makes {size}x{size} images, smaller than MNIST's 28x28")
    offset = (size - MNIST_SIZE) // 2
    cropped = images[:, :, offset : offset + MNIST_SIZE, offset : offset + MNIST_SIZE]
    pixels = cropped.float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()
    return pixels[:, 0] if channels == 1 else pixels.permute(0, 2, 3, 1).contiguous()


def channels_first(pixels: Tensor) -> Tensor:
    """uint8 [N, H, W] or [N, H, W, C] (:func:`to_mnist_uint8`'s) as [-1, 1] [N, C, H, W]."""
    stacked = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    return stacked.float() / 127.5 - 1


@torch.inference_mode()
def generate(
    generator: nn.Module, z: Tensor, labels: Tensor | None = None, batch_size: int = 500
) -> Tensor:
    """G's images for latents ``z`` (any device) in batches, as float [N, C, S, S] on the CPU."""
    device = next(generator.parameters()).device
    chunks = []
    for start in range(0, z.shape[0], batch_size):
        z_batch = z[start : start + batch_size].to(device)
        label_batch = None if labels is None else labels[start : start + batch_size].to(device)
        chunks.append(generator(z_batch, label_batch).float().cpu())
    return torch.cat(chunks)


def balanced_labels(count: int, num_classes: int) -> Tensor:
    """0, 1, ..., 9, 0, 1, ...: every digit count/10 times (within one), balanced in any prefix."""
    return torch.arange(count) % num_classes


def draw_samples(
    generator: nn.Module,
    num_samples: int,
    seed: int,
    digit: int | None = None,
    batch_size: int = 500,
) -> tuple[Tensor, Tensor | None]:
    """``num_samples`` images and, for a conditional G, the digits they were asked to be.

    All latents are drawn at once from their own seeded RNG, so the result depends on ``seed``
    only (not on ``batch_size``, the device or the global RNG).
    """
    labels = requested_labels(generator, num_samples, digit)
    z = sample_latents(generator, num_samples, rng=torch.Generator().manual_seed(seed))
    return generate(generator, z, labels, batch_size), labels


def requested_labels(generator: nn.Module, num_samples: int, digit: int | None) -> Tensor | None:
    """The digits a conditional G is asked for (all ``digit``, or balanced); None if it is not."""
    if num_samples < 1:
        raise SampleError(f"num_samples={num_samples} must be at least 1")
    num_classes = generator.num_classes
    check_digit("digit", digit, num_classes)
    if not num_classes:
        return None
    if digit is not None:
        return torch.full((num_samples,), digit)
    return balanced_labels(num_samples, num_classes)


def check_digit(key: str, digit: int | None, num_classes: int) -> None:
    """``digit=`` only makes sense for a conditional G, and only for one of its classes."""
    if digit is None:
        return
    if num_classes == 0:
        raise SampleError(
            f"{key}={digit} needs a conditional generator (model=cgan); this checkpoint's "
            "generator is unconditional. Leave it out, or use mode=interpolate "
            "from_digit=... to_digit=..., which finds digits with a classifier"
        )
    if not 0 <= digit < num_classes:
        raise SampleError(f"{key}={digit} is not a class of this generator (0..{num_classes - 1})")


@torch.inference_mode()
def class_probabilities(classifier: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """The classifier's softmax for each [-1, 1] image, as float [N, classes] on the CPU."""
    device = next(classifier.parameters()).device
    chunks = [
        classifier(images[start : start + batch_size].to(device)).softmax(dim=1).float().cpu()
        for start in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(chunks)


def predict_digits(classifier: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """The classifier's answer for each [-1, 1] image, as int64 [N] on the CPU."""
    return class_probabilities(classifier, images, batch_size).argmax(dim=1)


def find_digit_latent(
    generator: nn.Module,
    classifier: nn.Module,
    digit: int,
    seed: int,
    candidates: int = 1024,
    batch_size: int = 500,
) -> Tensor:
    """A latent [D] whose image the classifier reads as ``digit``, most confidently.

    Draws ``candidates`` latents from ``seed`` and keeps the one with the highest probability
    for ``digit`` among those classified as it: a clear example, as seed 001 chose its 6 and 9.
    """
    z = sample_latents(generator, candidates, rng=torch.Generator().manual_seed(seed))
    probabilities = class_probabilities(classifier, generate(generator, z, None, batch_size))
    recognised = probabilities.argmax(dim=1) == digit
    if not recognised.any():
        raise SampleError(
            f"the classifier read none of {candidates} samples (seed {seed}) as a {digit}; the "
            "generator may not draw it (yet). Try another seed or a later checkpoint"
        )
    confidence = probabilities[:, digit].masked_fill(~recognised, -1.0)
    return z[confidence.argmax()]


def walk(
    generator: nn.Module,
    start: Tensor,
    end: Tensor,
    steps: int,
    spherical: bool = False,
    labels: Tensor | None = None,
    batch_size: int = 500,
) -> tuple[Tensor, Tensor | None]:
    """Images along ``steps`` latents from ``start`` [R, D] to ``end`` [R, D], row by row.

    Returns images [R * steps, C, S, S] (one row per walk, as a grid with ``nrow=steps`` shows
    them) and, for a conditional G, each image's label (``labels`` [R] holds one per walk).
    """
    latents = interpolate(start, end, steps, spherical).reshape(-1, start.shape[1])
    row_labels = None if labels is None else labels.repeat_interleave(steps)
    return generate(generator, latents, row_labels, batch_size), row_labels


def write_samples(
    path: Path,
    images: Tensor,
    labels: Tensor | None,
    nrow: int,
    metadata: Mapping[str, float] | None = None,
) -> Path:
    """``.npz``: ``images`` uint8 [N, 28, 28], or [N, 28, 28, 3] for an RGB generator (+
    ``labels`` int64 [N]); ``.png``: their grid, in colour for an RGB generator.

    ``metadata`` (how the images were chosen, e.g. ``rejection_keep``) becomes scalar arrays of
    the ``.npz``, which a reader checks with ``key in data``: absent means not used.
    """
    pixels = to_mnist_uint8(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        arrays: dict[str, Any] = {"images": pixels.numpy()}
        if labels is not None:
            arrays["labels"] = labels.to(torch.int64).numpy()
        arrays |= {key: np.float64(value) for key, value in (metadata or {}).items()}
        np.savez_compressed(path, **arrays)
        return path
    return save_grid(channels_first(pixels), path, nrow=nrow)


def grid_columns(count: int, num_classes: int, per_digit: bool) -> int:
    """A roughly square grid; a multiple of the class count when each column is one digit."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(columns / num_classes) * num_classes if per_digit else columns


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise SampleError(f"device={name!r} is not a device: use auto, cpu or cuda") from error


def load_generator(
    path: str | Path,
    use_ema: bool = True,
    trusted_networks: Sequence[str] = (),
    temperature: float | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The sampling generator of a GAN checkpoint (EMA weights when present) and its config.

    The returned network is in eval mode with BatchNorm statistics recomputed for its weights,
    and draws its latents at ``temperature`` (None: the run's own ``temperature``; 1 for runs
    from before there was one). ``trusted_networks``: modules of the user's own whose network
    classes the file may name (see :func:`instantiate_network`).
    """
    checkpoint = load_checkpoint(path)
    config = run_config(checkpoint, path)
    generator = instantiate_network(
        config["model"]["generator"], f"{path} [model.generator]", trusted_networks
    )
    prefix = "g_ema" if use_ema and submodule_state(checkpoint, "g_ema") else "generator"
    load_state_strict(generator, submodule_state(checkpoint, prefix), f"{path} [{prefix}]")
    if temperature is None:
        temperature = config.get("temperature", 1.0)
    return sampling_copy(generator, temperature=temperature), config
