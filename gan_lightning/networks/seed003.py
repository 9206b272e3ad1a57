"""Seed 003's two small 28x28 GANs with a 64-d latent: ``fc`` and ``cnn``.

They are kept side by side because the seed compared them on equal footing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from gan_lightning.errors import ConfigError
from gan_lightning.networks.layers import Discriminator, Generator, Reshape
from gan_lightning.rules import Rule, is_number, one_of, refuse_broken

IMAGE_PIXELS = 28 * 28
OUTPUTS = ("tanh", "linear")
#: What seed 003's torchvision pipeline standardized its images with (``Normalize((0.1307,),
#: (0.3081,))``): MNIST's mean and standard deviation of [0, 1] pixels.
MNIST_MEAN_STD = (0.1307, 0.3081)


def _mean_std(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(is_number(v) for v in value)
        and 0 <= value[0] <= 1
        and value[1] > 0
    )


def _standardize(value: Any) -> bool:
    return value is None or _mean_std(value)


_STANDARDIZE_ALLOWED = (
    "null or [mean, std] of [0, 1] pixels with std > 0, e.g. seed 003's [0.1307, 0.3081]"
)

#: The key a user sets: ``conf/model/cnn.yaml`` feeds both networks' ``standardize`` from it by
#: interpolation, so ``config.RULES`` checks it once and ``validate`` leaves the two copies it
#: feeds to this line instead of reporting one bad value three times.
STANDARDIZE_RULE = Rule("model.standardize", _standardize, _STANDARDIZE_ALLOWED, required=False)


def standardize_rule(network: str) -> Rule:
    """A network's own copy of ``model.standardize``, for a value set on it directly."""
    return Rule(
        f"model.{network}.standardize",
        _standardize,
        f"{_STANDARDIZE_ALLOWED} (set it once as model.standardize)",
    )


class Standardize(nn.Module):
    """[-1, 1] pixels to the units seed 003's networks worked in, or (``inverse``) back.

    The seed fed its networks ``(p - mean) / std`` of [0, 1] pixels ``p`` and let G draw in
    those units. With this map as D's first layer and its inverse as G's last, the trainable
    layers see and draw exactly the seed's numbers while data, metrics and pictures keep the
    project's [-1, 1]. That is not a cosmetic change: Adam moves every weight by about the
    learning rate whatever the pixel scale, so the scale sets how far one step moves an image.
    """

    def __init__(self, mean: float, std: float, *, inverse: bool = False) -> None:
        super().__init__()
        self.mean, self.std, self.inverse = float(mean), float(std), inverse

    def forward(self, x: Tensor) -> Tensor:
        if self.inverse:
            return (x * self.std + self.mean) * 2 - 1
        return ((x + 1) / 2 - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}, inverse={self.inverse}"


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
    ``standardize=[mean, std]`` makes the linear output the seed's standardized pixels
    (:class:`Standardize`), mapped back to [-1, 1] before anything else sees them.
    """

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("model.generator.output", one_of(OUTPUTS), " or ".join(OUTPUTS)),
        standardize_rule("generator"),
    )

    def __init__(
        self,
        latent_dim: int = 64,
        latent_prior: str = "gaussian",
        output: str = "tanh",
        standardize: Sequence[float] | None = None,
    ) -> None:
        refuse_broken(
            self.RULES,
            {"model.generator.output": output, "model.generator.standardize": standardize},
        )
        if standardize is not None and output != "linear":
            raise ConfigError(
                f"model.standardize={list(standardize)} makes G draw standardized pixels, which "
                f"a {output} output cannot reach; set model.generator.output=linear as well"
            )
        if output == "tanh":
            head: list[nn.Module] = [nn.Tanh()]
        else:
            head = [ClampWhenSampling()]
            if standardize is not None:
                head.insert(0, Standardize(*standardize, inverse=True))
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
                *head,
            ),
            latent_prior=latent_prior,
        )


class CNNDiscriminator(Discriminator):
    """The PyTorch MNIST example network with its 10-way head cut down to one logit.

    ``standardize=[mean, std]`` feeds it the seed's standardized pixels (:class:`Standardize`).
    """

    RULES: ClassVar[tuple[Rule, ...]] = (standardize_rule("discriminator"),)

    def __init__(self, standardize: Sequence[float] | None = None) -> None:
        refuse_broken(self.RULES, {"model.discriminator.standardize": standardize})
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
        # Outside ``net``, so its layers keep their state-dict names whichever the setting.
        self.inputs = Standardize(*standardize) if standardize is not None else nn.Identity()

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        return super().forward(self.inputs(images), labels)
