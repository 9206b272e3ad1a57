"""Discriminator regularizers: penalties on gradients with respect to D's *inputs*.

They take D itself (not just its logits) because they differentiate through it.
:class:`DiscriminatorPenalties` is the one call the training step makes: it returns every
enabled penalty, weighted, under its own name, so D's loss is the sum of its terms and each term
shows up in TensorBoard (``loss/d/gp``, ``loss/d/r1``, ``loss/d/r2``). Two more regularize
D's outputs rather than its gradients: :func:`consistency_penalty` (bCR) runs D again on shifted
inputs, and :class:`LeCam` keeps running means, so it is a module whose buffers travel in the
checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_lightning.gan.augment import shift


def wgan_gradient_penalty(
    discriminator: nn.Module, real: Tensor, fake: Tensor, labels: Tensor | None = None
) -> Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on random interpolates of real and fake images."""
    mix = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    interpolates = torch.lerp(fake.detach(), real.detach(), mix).requires_grad_(True)
    scores = discriminator(interpolates, labels)
    (grad,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).square().mean()


def r1_penalty(real_logits: Tensor, real_inputs: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ||grad D(x)||^2 on real data, which must require grad.

    The same function on fakes is R2 (R3GAN): only the inputs differ.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return grad.flatten(1).square().sum(dim=1).mean()


def consistency_penalty(
    discriminator: nn.Module,
    inputs: Tensor,
    logits: Tensor,
    labels: Tensor | None,
    max_shift: int,
) -> Tensor:
    """bCR's term for one side (Zhao et al. 2021): the mean squared change of D's logit when
    each of its ``inputs`` (which gave ``logits``) is shifted by up to ``max_shift`` pixels.

    Both logits carry gradients, as in the paper: D is pulled towards agreeing with itself,
    not towards its verdict on the unshifted image.
    """
    shifted = shift(inputs, max_shift, max_shift)
    return (discriminator(shifted, labels).float() - logits).square().mean()


class LeCam(nn.Module):
    """LeCam regularization (Tseng et al., CVPR 2021): D's outputs on reals are pulled towards
    the running mean of its outputs on fakes, and those on fakes towards the reals' mean.

    A D that memorizes a small training set drives the two apart without bound; this term
    (a bound on the LeCam divergence) keeps them within reach, at the cost of two means.
    """

    def __init__(self, decay: float = 0.99) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("real_mean", torch.zeros(()))
        self.register_buffer("fake_mean", torch.zeros(()))

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        penalty = (real_logits - self.fake_mean).relu().square().mean() + (
            self.real_mean - fake_logits
        ).relu().square().mean()
        with torch.no_grad():
            self.real_mean.lerp_(real_logits.detach().mean(), 1.0 - self.decay)
            self.fake_mean.lerp_(fake_logits.detach().mean(), 1.0 - self.decay)
        return penalty


@dataclass(frozen=True)
class DiscriminatorPenalties:
    """The gradient penalties added to D's loss; a weight of 0 turns one off.

    Args:
        gradient_penalty_weight: WGAN-GP's weight (``loss.gradient_penalty_weight``; the paper
            uses 10), on interpolates of real and fake images.
        r1_gamma: R1's gamma (``tricks.r1_gamma``), on real images; the term is gamma / 2 times
            the squared gradient norm, as in StyleGAN2.
        r2_gamma: the same on fakes (``tricks.r2_gamma``; R3GAN uses R1 and R2 together).
        reg_every: lazy regularization (StyleGAN2, ``tricks.reg_every``): R1 and R2 only on
            every N-th D step, N times as strong, which costs 1/N of their double backward.
    """

    gradient_penalty_weight: float = 0.0
    r1_gamma: float = 0.0
    r2_gamma: float = 0.0
    reg_every: int = 1

    def due(self, d_step: int) -> bool:
        """Whether R1/R2 apply at this D step (counted from 0)."""
        return (self.r1_gamma > 0 or self.r2_gamma > 0) and d_step % self.reg_every == 0

    def needs_grad(self, d_step: int) -> tuple[bool, bool]:
        """Whether the real and the fake batch must require grad before D runs on them:
        R1 and R2 differentiate D's output by its input."""
        due = self.due(d_step)
        return due and self.r1_gamma > 0, due and self.r2_gamma > 0

    def __call__(
        self,
        discriminator: nn.Module,
        d_step: int,
        real: Tensor,
        real_logits: Tensor,
        fake: Tensor,
        fake_logits: Tensor,
        fake_labels: Tensor | None,
    ) -> dict[str, Tensor]:
        """The penalties due at ``d_step`` by name; ``real`` and ``fake`` are D's inputs that
        produced ``real_logits`` and ``fake_logits``."""
        terms = {}
        if self.gradient_penalty_weight > 0:
            penalty = wgan_gradient_penalty(discriminator, real, fake, fake_labels)
            terms["gp"] = self.gradient_penalty_weight * penalty
        if self.due(d_step):
            scale = 0.5 * self.reg_every
            if self.r1_gamma > 0:
                terms["r1"] = scale * self.r1_gamma * r1_penalty(real_logits, real)
            if self.r2_gamma > 0:
                terms["r2"] = scale * self.r2_gamma * r1_penalty(fake_logits, fake)
        return terms
