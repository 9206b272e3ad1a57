"""Seed 003's two small 28x28 GANs with a 64-d latent: ``fc`` and ``cnn``.

They are kept side by side because the seed compared them on equal footing.
"""

from __future__ import annotations

from torch import nn

from gan_lightning.networks.layers import Discriminator, Generator, Reshape

IMAGE_PIXELS = 28 * 28


class FCGenerator(Generator):
    """One 256-wide hidden layer: the smallest generator that still draws digits."""

    def __init__(
        self, latent_dim: int = 64, hidden_dim: int = 256, latent_prior: str = "gaussian"
    ) -> None:
        super().__init__(
            latent_dim,
            28,
            nn.Sequential(
                nn.Linear(latent_dim, hidden_dim),
                nn.LeakyReLU(0.1),
                nn.Linear(hidden_dim, IMAGE_PIXELS),
                nn.Tanh(),
                Reshape(1, 28, 28),
            ),
            latent_prior=latent_prior,
        )


class FCDiscriminator(Discriminator):
    """One 128-wide hidden layer, mirroring the generator's capacity."""

    def __init__(self, hidden_dim: int = 128) -> None:
        super().__init__(
            28,
            nn.Sequential(
                nn.Flatten(),
                nn.Linear(IMAGE_PIXELS, hidden_dim),
                nn.LeakyReLU(0.1),
                nn.Linear(hidden_dim, 1),
            ),
        )


class CNNGenerator(Generator):
    """Unpadded transposed convs overshoot to 34x34; a 7x7 conv trims to 28x28 and smooths."""

    def __init__(self, latent_dim: int = 64, latent_prior: str = "gaussian") -> None:
        super().__init__(
            latent_dim,
            28,
            nn.Sequential(
                nn.Linear(latent_dim, 64 * 7 * 7),
                nn.ReLU(),
                Reshape(64, 7, 7),
                nn.ConvTranspose2d(64, 32, 4, 2),
                nn.ReLU(),
                nn.ConvTranspose2d(32, 16, 4, 2),
                nn.ReLU(),
                nn.Conv2d(16, 1, 7),
                nn.Tanh(),
            ),
            latent_prior=latent_prior,
        )


class CNNDiscriminator(Discriminator):
    """The PyTorch MNIST example network with its 10-way head cut down to one logit."""

    def __init__(self) -> None:
        super().__init__(
            28,
            nn.Sequential(
                nn.Conv2d(1, 10, 5),
                nn.MaxPool2d(2),
                nn.ReLU(),
                nn.Conv2d(10, 20, 5),
                nn.Dropout2d(),
                nn.MaxPool2d(2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(320, 50),
                nn.ReLU(),
                nn.Dropout(),
                nn.Linear(50, 1),
            ),
        )
