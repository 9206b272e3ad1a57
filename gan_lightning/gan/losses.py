"""Adversarial losses as pure functions of the discriminator's logits.

Every discriminator in this project returns raw logits, so each loss applies its own squashing
(or none, for hinge and Wasserstein). A loss never sees the networks: regularizers that need
gradients with respect to D's inputs live in :mod:`gan_lightning.gan.regularizers`.

``real_targets`` / ``fake_targets`` carry label smoothing and flipping. Losses whose objective is
not a classification (hinge, Wasserstein) have ``uses_targets = False``; the trick validation
refuses smoothing or flipping with them instead of silently ignoring it.

Each loss also says how D's outputs read (:meth:`GANLoss.discriminator_outputs`): the BCE family
logs them as probabilities ``D(x)`` / ``D(G(z))``; hinge and WGAN critics output unbounded
scores, logged raw as ``D_score(x)`` / ``D_score(G(z))`` so nobody reads a sigmoid of them as
a probability.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lightning.rules import Rule, number_in, refuse_broken


class GANLoss:
    """Base class: the discriminator and generator objectives of one GAN formulation."""

    #: whether the loss reads ``real_targets`` / ``fake_targets`` (label smoothing and flipping)
    uses_targets: bool = True
    #: weight of the WGAN-GP gradient penalty the training step adds to D's loss (0 = none)
    gradient_penalty_weight: float = 0.0
    #: whether G's loss compares each fake with a real image (relativistic losses), so the G
    #: step must show D a real batch too
    pairs_real_and_fake: bool = False
    #: D's output at which it is undecided: above it an image is judged real
    threshold: float = 0.0

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor
    ) -> dict[str, Tensor]:
        """Return D's loss terms by name (``real``, ``fake``); the step sums and logs them."""
        raise NotImplementedError

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """G's loss; ``real_logits`` (D on a real batch) only for ``pairs_real_and_fake``."""
        raise NotImplementedError

    def realness(self, real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
        """How real D finds each real and each fake image: above 0 means judged real.

        The training-health scalars (D's accuracy, r_t) and the adaptive augmentation read D's
        verdicts through this, so that each loss says where its decision lies.
        """
        return real_logits - self.threshold, fake_logits - self.threshold

    def discriminator_outputs(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """D's mean verdict on real and fake images, named for what it is (logged every step)."""
        return {
            "D(x)": torch.sigmoid(real_logits).mean(),
            "D(G(z))": torch.sigmoid(fake_logits).mean(),
        }

    def __repr__(self) -> str:
        return type(self).__name__


class NonSaturatingLoss(GANLoss):
    """Goodfellow et al. 2014, with G maximizing log D(G(z)): strong gradients early in training."""

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor
    ) -> dict[str, Tensor]:
        return {
            "real": F.binary_cross_entropy_with_logits(real_logits, real_targets),
            "fake": F.binary_cross_entropy_with_logits(fake_logits, fake_targets),
        }

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class MinimaxLoss(NonSaturatingLoss):
    """The original saturating objective: G minimizes log(1 - D(G(z))).

    Kept for teaching: its gradient vanishes when D confidently rejects fakes, which is exactly
    the situation at the start of training. ``-softplus(x)`` is log(1 - sigmoid(x)) computed
    without overflow.
    """

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return -F.softplus(fake_logits).mean()


class LeastSquaresLoss(GANLoss):
    """LSGAN (Mao et al. 2017): squared distance of the logits to the targets."""

    threshold = 0.5  # halfway between the targets 0 and 1

    def discriminator_outputs(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """D regresses its raw output onto the targets 1 and 0, so that output is the verdict."""
        return {"D(x)": real_logits.mean(), "D(G(z))": fake_logits.mean()}

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor
    ) -> dict[str, Tensor]:
        return {
            "real": 0.5 * F.mse_loss(real_logits, real_targets),
            "fake": 0.5 * F.mse_loss(fake_logits, fake_targets),
        }

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return 0.5 * F.mse_loss(fake_logits, torch.ones_like(fake_logits))


class ScoreLoss(GANLoss):
    """Base of the losses whose D is a critic: unbounded scores, no real/fake targets."""

    uses_targets = False

    def discriminator_outputs(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        return {"D_score(x)": real_logits.mean(), "D_score(G(z))": fake_logits.mean()}


class HingeLoss(ScoreLoss):
    """Hinge loss (Lim & Ye 2017; SN-GAN, BigGAN)."""

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor
    ) -> dict[str, Tensor]:
        return {"real": F.relu(1.0 - real_logits).mean(), "fake": F.relu(1.0 + fake_logits).mean()}

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return -fake_logits.mean()


class WassersteinGPLoss(ScoreLoss):
    """WGAN-GP (Gulrajani et al. 2017): critic scores plus a gradient penalty on interpolates."""

    #: Its one setting's check, read by ``config.validate`` from the class ``loss._target_`` names.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("loss.gradient_penalty_weight", number_in(0), "a number >= 0 (paper: 10)"),
    )

    def __init__(self, gradient_penalty_weight: float = 10.0) -> None:
        refuse_broken(self.RULES, {"loss.gradient_penalty_weight": gradient_penalty_weight})
        self.gradient_penalty_weight = gradient_penalty_weight

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor
    ) -> dict[str, Tensor]:
        return {"real": -real_logits.mean(), "fake": fake_logits.mean()}

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        return -fake_logits.mean()


class RelativisticLoss(ScoreLoss):
    """The relativistic pairing loss of RpGAN / R3GAN (Jolicoeur-Martineau 2019; Huang et al.,
    NeurIPS 2024): D judges whether a real image is more real than a fake one, pair by pair,
    and G the reverse.

    Each fake is compared with one real image instead of with a fixed target, so D cannot
    separate the two sets by pushing every real up and every fake down alone; R3GAN shows it
    covers every mode of StackedMNIST with R1 and R2 (``tricks.r1_gamma``,
    ``tricks.r2_gamma``), where the usual loss misses some.
    """

    pairs_real_and_fake = True

    def realness(self, real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
        """Only differences of D's outputs mean anything here (a constant added to every
        output changes no loss), so D's verdict is on each pair: is the real one more real."""
        return real_logits - fake_logits, fake_logits - real_logits

    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor
    ) -> dict[str, Tensor]:
        return {"pair": F.softplus(fake_logits - real_logits).mean()}

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        if real_logits is None:
            raise ValueError("RelativisticLoss.generator_loss pairs each fake with a real logit")
        return F.softplus(real_logits - fake_logits).mean()
