"""Discriminator regularizers: penalties on gradients with respect to D's *inputs*.

They take D itself (not just its logits) because they differentiate through it; the training
step adds them to D's loss under their own names so each term shows up in TensorBoard.
"""

from __future__ import annotations

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
