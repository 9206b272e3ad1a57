"""Settings each valid alone that contradict each other once combined with the built networks.

Each group's own keys are checked by its ``RULES``; what is left needs the loss, the tricks and
the networks together (a conditional generator, a discriminator with BatchNorm), so the builder
calls :func:`check_compatible` once it has built them, before it initializes any weights.
"""

from __future__ import annotations

from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from gan_lightning.errors import ConfigError
from gan_lightning.gan.ema import has_batchnorm
from gan_lightning.gan.losses import GANLoss
from gan_lightning.gan.tricks import Tricks


def check_compatible(
    loss: GANLoss,
    tricks: Tricks,
    generator: nn.Module,
    discriminator: nn.Module,
    guide_classifier: nn.Module | None,
    *,
    has_scheduler: bool = False,
) -> None:
    """Refuse combinations that would silently do something other than what was asked.

    ``has_scheduler``: ``scheduler.g`` or ``scheduler.d`` is set.

    Raises:
        ConfigError: naming the keys that contradict each other and how to reconcile them.
    """
    if loss.gradient_penalty_weight > 0 and has_batchnorm(discriminator):
        # BatchNorm mixes the samples of a batch, so the per-sample gradient norm the penalty
        # constrains is not exactly the critic's (Gulrajani et al. 2017, section 4). It still
        # trains, so this is a warning: the user asked for it and may be comparing exactly that.
        rank_zero_warn(
            f"loss={loss!r} penalizes per-sample critic gradients, but "
            f"{type(discriminator).__name__} uses BatchNorm, which couples the samples of a batch "
            "(WGAN-GP paper, section 4). For the textbook setting use model=mlp, fc or cnn "
            "(no BatchNorm in D), or loss=hinge."
        )
    if tricks.uses_targets and not loss.uses_targets:
        raise ConfigError(
            f"loss={loss!r} has no real/fake targets, so tricks.label_smoothing and "
            "tricks.label_flip_prob cannot apply; use loss=bce, minimax or lsgan, or turn them off"
        )
    if tricks.classifier_guidance.alpha is not None:
        if generator.num_classes == 0:
            raise ConfigError(
                "tricks.classifier_guidance needs a conditional generator (model=cgan); "
                f"this generator has num_classes=0 ({type(generator).__name__})"
            )
        if guide_classifier is None:
            raise ConfigError(
                "tricks.classifier_guidance.alpha is set but no classifier was given; set "
                "metrics.classifier_ckpt (train one: `python -m gan_lightning.train_classifier`)"
            )
    clusters = getattr(generator, "clusters", 0)
    if clusters != getattr(discriminator, "clusters", 0):
        raise ConfigError(
            f"The generator draws from {clusters} clusters but the discriminator judges "
            f"{getattr(discriminator, 'clusters', 0)}; set model.clusters, which both read, "
            "rather than model.generator.clusters or model.discriminator.clusters"
        )
    if tricks.lr_decay_to is not None and has_scheduler:
        raise ConfigError(
            f"tricks.lr_decay_to={tricks.lr_decay_to} and scheduler.g / scheduler.d "
            "both set the learning rates; use one of them"
        )
