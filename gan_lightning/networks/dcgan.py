"""Seed 001's DCGAN for 32x32 images (MNIST padded by 2 px so three stride-2 stages fit)."""

from __future__ import annotations

from torch import nn

from gan_lightning.networks.layers import Discriminator, Generator, Reshape, block


class DCGANGenerator(Generator):
    """Linear to 256x4x4, then three stride-2 transposed convs up to 32x32."""

    def __init__(self, latent_dim: int = 100, latent_prior: str = "gaussian") -> None:
        super().__init__(
            latent_dim,
            32,
            nn.Sequential(
                nn.Linear(latent_dim, 256 * 4 * 4),
                nn.LeakyReLU(0.2),
                Reshape(256, 4, 4),
                *block(nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.LeakyReLU(0.2), batch_norm=True),
                *block(nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.LeakyReLU(0.2), batch_norm=True),
                nn.ConvTranspose2d(64, 1, 4, 2, 1),
                nn.Tanh(),
            ),
            latent_prior=latent_prior,
        )


class DCGANDiscriminator(Discriminator):
    """Three stride-2 convs down to 256x4x4, then one linear logit."""

    def __init__(self) -> None:
        super().__init__(
            32,
            nn.Sequential(
                *block(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), batch_norm=True),
                *block(nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2), batch_norm=True),
                *block(nn.Conv2d(128, 256, 4, 2, 1), nn.LeakyReLU(0.2)),
                nn.Flatten(),
                nn.Linear(256 * 4 * 4, 1),
            ),
        )
