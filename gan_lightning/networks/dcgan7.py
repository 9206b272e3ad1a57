"""Seed 002's DCGAN for native 28x28 images: a 7x7 kernel bridges z (1x1) and 7x7 features."""

from __future__ import annotations

from torch import Tensor, nn

from gan_lightning.networks.layers import Discriminator, Generator, block


class DCGAN7Generator(Generator):
    """z as a 1x1 map, a 7x7 transposed conv to 256x7x7, then two stride-2 stages to 28x28."""

    def __init__(self, latent_dim: int = 100, latent_prior: str = "gaussian") -> None:
        super().__init__(
            latent_dim,
            28,
            nn.Sequential(
                *block(nn.ConvTranspose2d(latent_dim, 256, 7, 1, 0), nn.ReLU(), batch_norm=True),
                *block(nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(), batch_norm=True),
                nn.ConvTranspose2d(128, 1, 4, 2, 1),
                nn.Tanh(),
            ),
            latent_prior=latent_prior,
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z.reshape(z.shape[0], self.latent_dim, 1, 1))


class DCGAN7Discriminator(Discriminator):
    """Two stride-2 convs to 256x7x7; a 7x7 conv collapses that to a single logit."""

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__(
            28,
            nn.Sequential(
                *block(nn.Conv2d(1, 128, 4, 2, 1), nn.LeakyReLU(0.2), dropout=dropout),
                *block(
                    nn.Conv2d(128, 256, 4, 2, 1),
                    nn.LeakyReLU(0.2),
                    batch_norm=True,
                    dropout=dropout,
                ),
                nn.Conv2d(256, 1, 7, 1, 0),
            ),
        )
