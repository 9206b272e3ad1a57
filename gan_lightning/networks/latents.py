"""Where a generator's latent vectors come from: one function, so every caller draws alike.

Training, the fixed-noise grid, BatchNorm recalibration, metrics, pictures and the ``sample``
command all draw latents through :func:`sample_latents`, which reads the prior off the generator
itself (``model.latent_prior``). A generator trained on one prior and sampled from another
draws garbage, and the prior travels with the network (and its saved config) this way.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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
        return torch.rand(shape, generator=rng, device=device) * 2 - 1
    return torch.randn(shape, generator=rng, device=device)
