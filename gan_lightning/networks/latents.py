"""Where a generator's latent vectors come from: one function, so every caller draws alike.

Training, the fixed-noise grid, BatchNorm recalibration, metrics, pictures and the ``sample``
command all draw latents through :func:`sample_latents`, which reads the prior off the generator
itself (``model.latent_prior``). A generator trained on one prior and sampled from another
draws garbage, and the prior travels with the network (and its saved config) this way.

A sampling copy of a generator (:func:`gan_lightning.gan.ema.sampling_copy`) also carries a
``sampling_temperature`` (the ``temperature`` key of a run, of ``sample`` and of ``evaluate``;
named apart from any ``temperature`` a user's network may hold): its latents are the prior's
scaled by it, as Glow's and BigGAN's samplers trade variety against fidelity.
Averaged generators draw a narrower spread than the data's, and a temperature a little above 1
widens it back (docs/sampling.md measures it); the generator being trained never has one, so
training sees the prior as is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gan_lightning.rules import Rule, number_in, refuse_broken

#: gaussian: N(0, I), the usual choice; uniform: U(-1, 1)^d, what seed 004 (and the Udacity
#: course code it comes from) feeds its MLP generator.
LATENT_PRIORS = ("gaussian", "uniform")


def check_latent_prior(prior: str) -> str:
    if prior not in LATENT_PRIORS:
        raise ValueError(
            f"model.latent_prior={prior!r} is not a known prior; use one of "
            f"{', '.join(LATENT_PRIORS)}"
        )
    return prior


def sample_latents(
    generator: nn.Module,
    count: int,
    *,
    rng: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``count`` latent vectors for ``generator`` from its prior, on ``device``.

    ``rng`` keeps the draw off the global RNG (pictures, metrics, fixed noise), so drawing
    them never shifts the training stream that exact resume replays.
    """
    shape = (count, generator.latent_dim)
    if getattr(generator, "latent_prior", "gaussian") == "uniform":
        z = torch.rand(shape, generator=rng, device=device) * 2 - 1
    else:
        z = torch.randn(shape, generator=rng, device=device)
    return temper(generator, z)


def temper(generator: nn.Module, z: Tensor) -> Tensor:
    """``z`` scaled by ``generator``'s ``sampling_temperature`` (none: ``z`` itself).

    The leading ``choice_entries`` of a latent pick something discrete through the prior's CDF
    (a cluster, ``model.clusters``) and keep their value: scaled, they would pick the clusters
    at both ends of the CDF more often than the training images hold them.
    """
    temperature = getattr(generator, "sampling_temperature", 1.0)
    if temperature == 1.0:
        return z
    kept = getattr(generator, "choice_entries", 0)
    return torch.cat([z[:, :kept], z[:, kept:] * temperature], dim=1)


def temperature_rule(key: str) -> Rule:
    """The check of a sampling temperature under ``key`` (a run's, ``sample``'s, ``evaluate``'s)."""
    return Rule(key, number_in(0, include_low=False), "a number > 0 (1: the prior as trained)")


def checked_temperature(temperature: Any) -> float | None:
    """A command's ``temperature``: None (each run's own) or a number > 0, refused by name."""
    if temperature is None:
        return None
    rule = temperature_rule("temperature")
    refuse_broken([rule], {rule.key: temperature})
    return float(temperature)
