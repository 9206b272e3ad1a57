"""Seed 000's conditional GAN on 28x28 images: the generator is told which digit to draw."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.errors import ConfigError
from gan_lightning.networks.latents import check_latent_prior
from gan_lightning.networks.layers import MinibatchStdDev, Reshape, block, require_labels
from gan_lightning.rules import Rule, int_at_least, is_bool, one_of, refuse_broken

CONDITIONING = ("none", "projection")


class CGANGenerator(nn.Module):
    """Concatenates one_hot(label) with z, so every layer can depend on the class.

    With ``num_classes=0`` it is the same network without labels (``model=dcgan28``): a
    DCGAN-style generator at native 28x28 with 64 channels at full resolution. ``channels=3``
    draws RGB images (``data.channels=3``) with one wider last convolution, nothing else.

    ``clusters=K`` (:mod:`gan_lightning.gan.clusters`) feeds it one-hot the cluster its latent
    picks: z's first entry, through its prior's CDF, chooses among the K clusters in proportion
    to ``cluster_shares``, which training sets to the clusters' shares of the training images.
    A conditional generator chooses among its label's own K clusters (one-hot over all
    ``num_classes * K``, which also names the class). The choice lives in z, so everything that
    samples a generator draws plain latents (and labels) and gets training's proportions.

    ``width`` is the channel count at full resolution (seed 000's 64); the 7x7 and 14x14
    stages carry twice as many.
    """

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("model.generator.width", int_at_least(1), "an integer >= 1"),
    )
    image_size = 28
    cluster_shares: Tensor

    def __init__(
        self,
        latent_dim: int = 100,
        num_classes: int = 10,
        latent_prior: str = "gaussian",
        channels: int = 1,
        clusters: int = 0,
        width: int = 64,
    ) -> None:
        refuse_broken(self.RULES, {"model.generator.width": width})
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.clusters = clusters
        self.channels = channels
        self.latent_prior = check_latent_prior(latent_prior)
        # z's first entry picks the cluster: a sampling temperature leaves it as drawn.
        self.choice_entries = 1 if clusters else 0
        conditions = max(num_classes, 1) * clusters if clusters else num_classes
        if clusters:  # only then: checkpoints of the plain networks hold no such buffer
            self.register_buffer("cluster_shares", torch.full((conditions,), 1.0 / clusters))
        wide = 2 * width
        self.net = nn.Sequential(
            *block(
                nn.Linear(conditions + latent_dim, wide * 7 * 7),
                nn.LeakyReLU(0.2),
                batch_norm=True,
            ),
            Reshape(wide, 7, 7),
            *block(nn.ConvTranspose2d(wide, wide, 4, 2, 1), nn.LeakyReLU(0.2), batch_norm=True),
            *block(nn.ConvTranspose2d(wide, width, 4, 2, 1), nn.LeakyReLU(0.2), batch_norm=True),
            nn.Conv2d(width, channels, 3, 1, 1),
            nn.Tanh(),
        )

    def cluster_of(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The cluster each latent draws (``clusters`` > 0), ``[B]``: z's first entry is mapped
        to a uniform number by its prior's CDF and looked up in the cumulative shares (of its
        label's clusters, for a conditional generator: cluster ``label * clusters + j``)."""
        first = z[:, 0].float()
        if self.latent_prior == "uniform":
            uniform = (first + 1) / 2
        else:
            uniform = 0.5 * (1 + torch.erf(first / math.sqrt(2)))
        bounds = self.cluster_shares.float().view(-1, self.clusters).cumsum(dim=1)
        if not self.num_classes:
            within = torch.searchsorted(bounds[0], uniform * bounds[0, -1], right=True)
            return within.clamp(max=self.clusters - 1)
        labels = require_labels(labels, type(self).__name__).long()
        bounds = bounds[labels]  # [B, K]: each latent's label's cumulative shares
        within = torch.searchsorted(bounds, (uniform * bounds[:, -1]).unsqueeze(1), right=True)
        return labels * self.clusters + within.squeeze(1).clamp(max=self.clusters - 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.clusters:
            cluster = self.cluster_of(z, labels)
            condition = F.one_hot(cluster, self.cluster_shares.shape[0]).to(z.dtype)
            return self.net(torch.cat([condition, z], dim=1))
        if not self.num_classes:
            return self.net(z)
        labels = require_labels(labels, type(self).__name__)
        condition = F.one_hot(labels.long(), self.num_classes).to(z.dtype)
        return self.net(torch.cat([condition, z], dim=1))


class CGANDiscriminator(nn.Module):
    """Four convs to 4096 features and a linear logit, optionally with a projection term.

    ``conditioning="none"`` is seed 000's discriminator: it ignores labels, so only an
    auxiliary classifier can make the generator respect them. ``"projection"`` (Miyato &
    Koyama 2018) adds ``<embed(y), h>`` to the logit, so D itself judges whether an image
    matches its label and conditional generation works without a classifier. ``channels`` is
    the images' (1, or 3 for RGB). ``minibatch_std`` shows the last conv the spread within
    groups of 4 images (:class:`MinibatchStdDev`), so D can punish a generator that draws too
    little variety. ``clusters=K`` is the same projection over the K clusters of the training
    images (:mod:`gan_lightning.gan.clusters`): ``labels`` are then each image's cluster. For an
    unconditional pair ``conditioning`` (which is about classes) stays ``none``; a conditional
    one with ``projection`` judges against its classes' ``num_classes * K`` clusters instead.
    ``width`` is the first conv's channel count (seed 000's 32), doubled by each conv after it.
    """

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("model.discriminator.conditioning", one_of(CONDITIONING), " or ".join(CONDITIONING)),
        Rule("model.discriminator.minibatch_std", is_bool, "true or false"),
        Rule("model.discriminator.width", int_at_least(1), "an integer >= 1"),
    )
    image_size = 28

    def __init__(
        self,
        num_classes: int = 10,
        conditioning: str = "none",
        batch_norm: bool = True,
        channels: int = 1,
        minibatch_std: bool = False,
        clusters: int = 0,
        width: int = 32,
    ) -> None:
        if clusters and conditioning != ("projection" if num_classes else "none"):
            raise ConfigError(
                f"model.clusters={clusters} makes D judge images against their cluster: "
                "through its projection term (conditioning=projection) within classes, or "
                "instead of classes (num_classes=0, conditioning=none). This D has "
                f"num_classes={num_classes} and conditioning={conditioning!r}; use "
                "model.discriminator.conditioning=projection, or model.clusters=0"
            )
        refuse_broken(
            self.RULES,
            {
                "model.discriminator.conditioning": conditioning,
                "model.discriminator.minibatch_std": minibatch_std,
                "model.discriminator.width": width,
            },
        )
        super().__init__()
        self.num_classes = num_classes
        self.conditioning = conditioning
        self.clusters = clusters
        w = width
        self.features = nn.Sequential(
            *block(nn.Conv2d(channels, w, 3, 2, 1), nn.LeakyReLU(0.2)),
            *block(nn.Conv2d(w, 2 * w, 3, 2, 1), nn.LeakyReLU(0.2), batch_norm=batch_norm),
            *block(nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.LeakyReLU(0.2), batch_norm=batch_norm),
            *([MinibatchStdDev()] if minibatch_std else []),
            *block(
                nn.Conv2d(4 * w + int(minibatch_std), 8 * w, 3, 1, 1),
                nn.LeakyReLU(0.2),
                batch_norm=batch_norm,
            ),
            nn.Flatten(),
        )
        self.feature_dim = 8 * w * 4 * 4
        self.linear = nn.Linear(self.feature_dim, 1)
        self.embed: nn.Embedding | None = None
        if clusters:
            projected = max(num_classes, 1) * clusters
        else:
            projected = num_classes if conditioning == "projection" else 0
        if projected:
            self.embed = nn.Embedding(projected, self.feature_dim)
            # N(0, 1) rows summed over 4096 features would swamp the unconditional logit.
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(images)
        logits = self.linear(h).reshape(images.shape[0])
        if self.embed is None:
            return logits
        labels = require_labels(labels, f"{type(self).__name__} with a projection term")
        return logits + (self.embed(labels.long()) * h).sum(dim=1)
