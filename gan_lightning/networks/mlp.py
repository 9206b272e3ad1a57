"""Seed 004's fully connected GAN on 28x28 images: a baseline with no spatial prior."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn

from gan_lightning.networks.layers import Discriminator, Generator, Reshape, block

IMAGE_PIXELS = 28 * 28


def _mlp(widths: Sequence[int], dropout: float) -> list[nn.Module]:
    """Hidden Linear+LeakyReLU(0.2) stages between consecutive ``widths``."""
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(widths):
        layers += block(nn.Linear(width_in, width_out), nn.LeakyReLU(0.2), dropout=dropout)
    return layers


class MLPGenerator(Generator):
    """Widens 100-32-64-128 before the 784-pixel output layer.

    ``dropout`` after each hidden layer is what seed 004's course code does in G too; it is
    active while training and off when sampling (eval mode), so samples stay deterministic.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        hidden_dims: Sequence[int] = (32, 64, 128),
        dropout: float = 0.0,
        latent_prior: str = "gaussian",
    ) -> None:
        widths = [latent_dim, *hidden_dims]
        super().__init__(
            latent_dim,
            28,
            nn.Sequential(
                *_mlp(widths, dropout=dropout),
                nn.Linear(widths[-1], IMAGE_PIXELS),
                nn.Tanh(),
                Reshape(1, 28, 28),
            ),
            latent_prior=latent_prior,
        )


class MLPDiscriminator(Discriminator):
    """Narrows 784-128-64-32 to one logit; dropout keeps it from memorising the real set."""

    def __init__(self, hidden_dims: Sequence[int] = (128, 64, 32), dropout: float = 0.3) -> None:
        widths = [IMAGE_PIXELS, *hidden_dims]
        super().__init__(
            28,
            nn.Sequential(nn.Flatten(), *_mlp(widths, dropout), nn.Linear(widths[-1], 1)),
        )
