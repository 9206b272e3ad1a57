"""Seed 003's two small 28x28 GANs with a 64-d latent: ``fc`` and ``cnn``.

They are kept side by side because the seed compared them on equal footing.
"""

from __future__ import annotations

from torch import Tensor, nn

from gan_lightning.networks.layers import Discriminator, Generator, Reshape

IMAGE_PIXELS = 28 * 28
OUTPUTS = ("tanh", "linear")


class ClampWhenSampling(nn.Module):
    """A linear output for training and [-1, 1] images for everything that samples.

    Seed 003's CNN has no output activation: with a tanh, a generator that drifts towards the
    all-black background saturates it and gets almost no gradient back (our black-square
    collapse). Left linear, D sees the raw values, as in the seed, while the samples the
    metrics, pictures and sample files read (drawn in eval mode) are valid images.
    """

    def forward(self, images: Tensor) -> Tensor:
        return images if self.training else images.clamp(-1.0, 1.0)


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
    """Unpadded transposed convs overshoot to 34x34; a 7x7 conv trims to 28x28 and smooths.

    ``output="linear"`` is the seed's network exactly (no output activation, see
    :class:`ClampWhenSampling`); ``"tanh"`` squashes to [-1, 1] like every other generator here.
    """

    def __init__(
        self, latent_dim: int = 64, latent_prior: str = "gaussian", output: str = "tanh"
    ) -> None:
        if output not in OUTPUTS:
            raise ValueError(
                f"model.generator.output={output!r} is not allowed; it must be one of "
                f"{', '.join(OUTPUTS)}"
            )
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
                nn.Tanh() if output == "tanh" else ClampWhenSampling(),
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
