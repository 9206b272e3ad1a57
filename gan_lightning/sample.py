"""Draw from a trained GAN: ``python -m gan_lightning.sample ckpt_path=<checkpoint> [key=value]``.

``mode=samples`` writes ``num_samples`` images as an ``.npz`` (the format other tools read, see
docs/sampling.md) or a ``.png`` grid; ``mode=interpolate`` walks G's latent space between
two points, which can be chosen so that a digit classifier reads them as ``from_digit`` and
``to_digit``. All noise comes from ``seed``, so the same command writes the same images. The
drawing itself is :mod:`gan_lightning.generation`; this module reads the keys and checks them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.classifier import load_classifier
from gan_lightning.cli import command
from gan_lightning.errors import SampleError, task_wrapper
from gan_lightning.generation import (
    check_digit,
    draw_samples,
    find_digit_latent,
    grid_columns,
    load_generator,
    predict_digits,
    resolve_device,
    walk,
    write_samples,
)
from gan_lightning.networks.latents import checked_temperature, sample_latents
from gan_lightning.rejection import checked_keep, rejection_discriminator, rejection_sample
from gan_lightning.runs.checkpoints import checked_trusted_networks

NUM_DIGITS = 10
MODES = ("samples", "interpolate")
DEFAULT_OUT = {"samples": "samples.npz", "interpolate": "interpolation.png"}
OUT_SUFFIXES = (".npz", ".png")

log = logging.getLogger(__name__)


def output_path(out: str | None, mode: str) -> Path:
    """The output file; relative paths are relative to the folder the command was run from."""
    path = Path(to_absolute_path(out or DEFAULT_OUT[mode]))
    if path.suffix not in OUT_SUFFIXES:
        raise SampleError(f"out={out} must end in {' or '.join(OUT_SUFFIXES)}")
    return path


def load_digit_classifier(
    classifier_ckpt: str | None, run_config: dict[str, Any], device: torch.device
) -> nn.Module:
    """The classifier named by ``classifier_ckpt``, else the one the run was configured with."""
    configured = run_config.get("metrics", {}).get("classifier_ckpt")
    name = classifier_ckpt or configured
    if name is None or not Path(to_absolute_path(name)).is_file():
        raise SampleError(
            f"from_digit/to_digit need a digit classifier, and there is none at "
            f"classifier_ckpt={name}. Train one (`python -m gan_lightning.train_classifier`) "
            "or pass classifier_ckpt=<file>"
        )
    return load_classifier(to_absolute_path(name), key="classifier_ckpt").to(device)


def endpoint(
    generator: nn.Module, seed: int, digit: int | None, classifier: nn.Module | None
) -> Tensor:
    """A latent [1, D]: the first draw of ``seed``, or the clearest ``digit`` among its draws."""
    if digit is None:
        return sample_latents(generator, 1, rng=torch.Generator().manual_seed(seed))
    assert classifier is not None  # load_digit_classifier ran because a digit was asked for
    return find_digit_latent(generator, classifier, digit, seed)[None]


def interpolation(
    cfg: DictConfig, generator: nn.Module, run_config: dict[str, Any]
) -> tuple[Tensor, Tensor | None]:
    """mode=interpolate: one walk, or one per digit (same latents) for a conditional G."""
    num_classes = generator.num_classes
    digits_asked = cfg.from_digit is not None or cfg.to_digit is not None
    if num_classes and digits_asked:
        raise SampleError(
            "from_digit/to_digit choose latents that an unconditional generator turns into those "
            "digits; a conditional generator draws the digit it is given, so its walks keep the "
            "digit and change the style: use digit=<d>, or leave it out for one row per digit"
        )
    check_digit("digit", cfg.digit, num_classes)
    for key, value in (("from_digit", cfg.from_digit), ("to_digit", cfg.to_digit)):
        if value is not None and not 0 <= value < NUM_DIGITS:
            raise SampleError(f"{key}={value} is not a digit (0..{NUM_DIGITS - 1})")
    if cfg.steps < 2:
        raise SampleError(f"steps={cfg.steps} must be at least 2 (the walk's two endpoints)")
    device = next(generator.parameters()).device
    classifier = (
        load_digit_classifier(cfg.classifier_ckpt, run_config, device) if digits_asked else None
    )
    from_seed = cfg.seed if cfg.from_seed is None else cfg.from_seed
    to_seed = cfg.seed + 1 if cfg.to_seed is None else cfg.to_seed
    start = endpoint(generator, from_seed, cfg.from_digit, classifier)
    end = endpoint(generator, to_seed, cfg.to_digit, classifier)
    labels = None
    if num_classes:
        labels = torch.arange(num_classes) if cfg.digit is None else torch.tensor([cfg.digit])
    rows = 1 if labels is None else labels.shape[0]
    images, image_labels = walk(
        generator,
        start.expand(rows, -1),
        end.expand(rows, -1),
        cfg.steps,
        cfg.slerp,
        labels,
        cfg.batch_size,
    )
    if classifier is not None:
        readings = predict_digits(classifier, images, cfg.batch_size).tolist()
        log.info("classifier reads along the walk: %s", " ".join(map(str, readings)))
    return images, image_labels


def sample(cfg: DictConfig) -> Path:
    """Run the ``sample`` command for a composed ``sample`` config; returns the written file."""
    if cfg.ckpt_path is None:
        raise SampleError(
            "ckpt_path is required: python -m gan_lightning.sample "
            "ckpt_path=<run folder>/checkpoints/last.ckpt"
        )
    if cfg.mode not in MODES:
        raise SampleError(f"mode={cfg.mode} is not one of {', '.join(MODES)}")
    if cfg.batch_size < 1:
        raise SampleError(f"batch_size={cfg.batch_size} must be at least 1")
    keep = checked_keep(cfg.rejection)
    trusted = checked_trusted_networks(cfg.trusted_networks)
    temperature = checked_temperature(cfg.temperature)
    if keep is not None and cfg.mode != "samples":
        raise SampleError(
            f"rejection.keep={keep} chooses among random samples; mode={cfg.mode} draws a walk. "
            "Use mode=samples, or leave rejection.keep out"
        )
    out = output_path(cfg.out, cfg.mode)
    device = resolve_device(cfg.device)
    ckpt_path = to_absolute_path(cfg.ckpt_path)
    # Loaded first: a checkpoint without D is refused before the generator is rebuilt.
    discriminator = rejection_discriminator(ckpt_path, keep, trusted)
    generator, run_config = load_generator(ckpt_path, cfg.use_ema, trusted, temperature)
    generator.to(device)
    metadata = {}
    if generator.sampling_temperature != 1.0:  # the run's own, or the command's temperature=
        metadata["temperature"] = generator.sampling_temperature
    if cfg.mode == "samples":
        if discriminator is None:
            images, labels = draw_samples(
                generator, cfg.num_samples, cfg.seed, cfg.digit, cfg.batch_size
            )
        else:
            images, labels = rejection_sample(
                generator,
                discriminator.to(device),
                cfg.num_samples,
                cfg.seed,
                keep,
                cfg.digit,
                cfg.batch_size,
            )
            metadata["rejection_keep"] = keep
        per_digit = generator.num_classes > 0 and cfg.digit is None
        nrow = grid_columns(images.shape[0], generator.num_classes, per_digit)
    else:
        images, labels = interpolation(cfg, generator, run_config)
        nrow = cfg.steps
    write_samples(out, images, labels, nrow, metadata)
    chosen = "" if keep is None else f" (rejection.keep={keep}: those D rated most real)"
    log.info("wrote %d images to %s%s", images.shape[0], out, chosen)
    return out


@command(config_name="sample")
@task_wrapper
def main(cfg: DictConfig) -> None:
    sample(cfg)


if __name__ == "__main__":
    main()
