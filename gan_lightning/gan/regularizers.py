"""Discriminator regularizers: penalties on gradients with respect to D's *inputs*.

They take D itself (not just its logits) because they differentiate through it.
:class:`DiscriminatorPenalties` is the one call the training step makes: it returns every
enabled penalty, weighted, under its own name, so D's loss is the sum of its terms and each term
shows up in TensorBoard (``loss/d/gp``, ``loss/d/r1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


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
    """R1 (Mescheder et al. 2018): ||grad D(x)||^2 on real data, which must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return grad.flatten(1).square().sum(dim=1).mean()


@dataclass(frozen=True)
class DiscriminatorPenalties:
    """The gradient penalties added to D's loss; a weight of 0 turns one off.

    Args:
        gradient_penalty_weight: WGAN-GP's weight (``loss.gradient_penalty_weight``; the paper
            uses 10), on interpolates of real and fake images.
        r1_gamma: R1's gamma (``tricks.r1_gamma``), on real images; the term is gamma / 2 times
            the squared gradient norm, as in StyleGAN2.
    """

    gradient_penalty_weight: float = 0.0
    r1_gamma: float = 0.0

    @property
    def needs_real_grad(self) -> bool:
        """R1 differentiates D(x) by x, so the real batch must require grad before D runs."""
        return self.r1_gamma > 0

    def __call__(
        self,
        discriminator: nn.Module,
        real: Tensor,
        real_logits: Tensor,
        fake: Tensor,
        fake_labels: Tensor | None,
    ) -> dict[str, Tensor]:
        """The enabled penalties by name; ``real`` is D's input that produced ``real_logits``."""
        terms = {}
        if self.gradient_penalty_weight > 0:
            penalty = wgan_gradient_penalty(discriminator, real, fake, fake_labels)
            terms["gp"] = self.gradient_penalty_weight * penalty
        if self.r1_gamma > 0:
            terms["r1"] = 0.5 * self.r1_gamma * r1_penalty(real_logits, real)
        return terms
