"""Lean conv GANs at native 28x28, sized for many steps per CPU-minute.

Seed 001's DCGAN spends about 0.4 GFLOP per image per D+G step, most of it in two wide
transposed convs at 32x32; ten CPU-minutes buy it ~4,500 steps. These nets follow the MNIST
architecture of Lucic et al. 2018 ("Are GANs created equal?"): G is a linear layer to 2w x 7x7
and two stride-2 transposed convs (2w -> w -> 1), D mirrors it with two stride-2 convs (w -> 2w)
and one linear logit. With ``width=64`` (their G 128-64 / D 64-128) one D+G step costs about
0.1 GFLOP per image, four times fewer than seed 001's, and no 2 px padding is needed.

Both are conditional when ``num_classes > 0``: G then uses conditional BatchNorm (a per-class
gain and bias after every normalisation, as in BigGAN and Miyato & Koyama 2018) on top of a
one-hot label concatenated to z, and D adds the projection term ``<embed(y), h>`` to its logit,
so D judges whether an image fits its label without any auxiliary classifier.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.networks.latents import LATENT_PRIORS
from gan_lightning.networks.layers import MinibatchStdDev, require_labels
from gan_lightning.rules import Rule, int_at_least, is_bool, one_of, refuse_broken

D_NORMS = ("none", "batch")


def _shape_rules(network: str) -> tuple[Rule, ...]:
    """The sizes both networks take, under ``network``'s keys: each YAML feeds them from
    ``model.width`` / ``model.num_classes``, but a user may set one network's directly."""
    return (
        Rule(f"model.{network}.width", int_at_least(1), "an integer >= 1"),
        Rule(f"model.{network}.num_classes", int_at_least(0), "an integer >= 0 (0: unconditional)"),
    )


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose affine gain and bias are looked up per class (identity at init).

    Unconditional (``num_classes == 0``) it is a plain affine BatchNorm, so one generator class
    serves both cases with identical state-dict keys for the shared part.
    """

    def __init__(self, num_features: int, num_classes: int, spatial: bool) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        self.num_classes = num_classes
        self.norm = norm(num_features, affine=num_classes == 0)
        self.gain: nn.Embedding | None = None
        self.bias: nn.Embedding | None = None
        if num_classes:
            # Zero-initialised offsets: gamma = 1 + gain(y) starts at 1, beta = bias(y) at 0.
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        x = self.norm(x)
        if self.gain is None or self.bias is None:
            return x
        labels = require_labels(labels, "ConditionalBatchNorm")
        shape = (x.shape[0], -1) + (1,) * (x.ndim - 2)
        gain = 1.0 + self.gain(labels).view(shape).to(x.dtype)
        return x * gain + self.bias(labels).view(shape).to(x.dtype)


class LeanGenerator(nn.Module):
    """z (+ one-hot y) -> linear to 2w x 7x7 -> 2w->w (14x14) -> w->1 (28x28), ReLU, Tanh."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("model.generator.latent_dim", int_at_least(1), "an integer >= 1"),
        Rule("model.generator.latent_prior", one_of(LATENT_PRIORS), " or ".join(LATENT_PRIORS)),
        *_shape_rules("generator"),
    )
    image_size = 28
    channels = 1  # grayscale; the data module refuses data of another kind before training

    def __init__(
        self,
        latent_dim: int = 64,
        width: int = 64,
        num_classes: int = 0,
        latent_prior: str = "gaussian",
    ) -> None:
        refuse_broken(
            self.RULES,
            {
                "model.generator.latent_dim": latent_dim,
                "model.generator.latent_prior": latent_prior,
                "model.generator.width": width,
                "model.generator.num_classes": num_classes,
            },
        )
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.latent_prior = latent_prior
        self.width = width
        self.linear = nn.Linear(latent_dim + num_classes, 2 * width * 7 * 7)
        self.norm0 = ConditionalBatchNorm(2 * width * 7 * 7, num_classes, spatial=False)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 4, 2, 1)
        self.norm1 = ConditionalBatchNorm(width, num_classes, spatial=True)
        self.up2 = nn.ConvTranspose2d(width, 1, 4, 2, 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            labels = require_labels(labels, type(self).__name__).long()
            z = torch.cat([F.one_hot(labels, self.num_classes).to(z.dtype), z], dim=1)
        else:
            labels = None
        h = F.relu(self.norm0(self.linear(z), labels))
        h = h.view(z.shape[0], 2 * self.width, 7, 7)
        h = F.relu(self.norm1(self.up1(h), labels))
        return torch.tanh(self.up2(h))


class LeanDiscriminator(nn.Module):
    """1 -> w (14x14) -> 2w (7x7) stride-2 convs, LeakyReLU(0.2), one linear logit.

    Args:
        width: channel multiplier ``w``.
        num_classes: > 0 adds the projection term for conditional GANs.
        norm: ``batch`` puts BatchNorm after the second conv (DCGAN style); ``none`` leaves D
            unnormalised, the setting for spectral norm, R1 and minibatch std, whose per-sample
            views BatchNorm's batch coupling would blur.
        minibatch_std: append the minibatch std feature map before the logit.
    """

    RULES: ClassVar[tuple[Rule, ...]] = (
        *_shape_rules("discriminator"),
        Rule("model.discriminator.norm", one_of(D_NORMS), " or ".join(D_NORMS)),
        Rule("model.discriminator.minibatch_std", is_bool, "true or false"),
    )
    image_size = 28

    def __init__(
        self,
        width: int = 64,
        num_classes: int = 0,
        norm: str = "none",
        minibatch_std: bool = False,
    ) -> None:
        refuse_broken(
            self.RULES,
            {
                "model.discriminator.width": width,
                "model.discriminator.num_classes": num_classes,
                "model.discriminator.norm": norm,
                "model.discriminator.minibatch_std": minibatch_std,
            },
        )
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = [
            nn.Conv2d(1, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
        ]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(2 * width))
        layers.append(nn.LeakyReLU(0.2))
        if minibatch_std:
            layers.append(MinibatchStdDev())
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.feature_dim = (2 * width + int(minibatch_std)) * 7 * 7
        self.linear = nn.Linear(self.feature_dim, 1)
        self.embed: nn.Embedding | None = None
        if num_classes:
            self.embed = nn.Embedding(num_classes, self.feature_dim)
            # N(0, 1) rows summed over thousands of features would swamp the plain logit.
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(images)
        logits = self.linear(h).reshape(images.shape[0])
        if self.embed is None:
            return logits
        labels = require_labels(labels, type(self).__name__).long()
        return logits + (self.embed(labels) * h).sum(dim=1)
