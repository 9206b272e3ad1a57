"""What the D step adds to its loss beyond the adversarial terms, and how it names D's outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_lightning.gan import losses
from gan_lightning.gan.regularizers import (
    DiscriminatorPenalties,
    r1_penalty,
    wgan_gradient_penalty,
)


class _Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).view(-1)


def _inputs() -> tuple[_Critic, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    critic = _Critic()
    real = torch.randn(8, 1, 28, 28).requires_grad_(True)
    return critic, real, critic(real), torch.randn(8, 1, 28, 28)


def test_no_penalty_is_computed_when_both_weights_are_zero() -> None:
    critic, real, real_logits, fake = _inputs()
    penalties = DiscriminatorPenalties()
    assert penalties.needs_grad(0) == (False, False)
    assert penalties(critic, 0, real, real_logits, fake, critic(fake), None) == {}


def test_each_enabled_penalty_is_weighted_and_named() -> None:
    critic, real, real_logits, fake = _inputs()
    penalties = DiscriminatorPenalties(gradient_penalty_weight=10.0, r1_gamma=0.2)
    assert penalties.needs_grad(0) == (True, False)
    torch.manual_seed(1)  # WGAN-GP draws its interpolation weights
    terms = penalties(critic, 0, real, real_logits, fake, critic(fake), None)
    assert list(terms) == ["gp", "r1"]
    torch.manual_seed(1)
    torch.testing.assert_close(terms["gp"], 10.0 * wgan_gradient_penalty(critic, real, fake))
    torch.testing.assert_close(terms["r1"], 0.1 * r1_penalty(real_logits, real))


def test_r1_alone_leaves_out_the_interpolation_penalty() -> None:
    critic, real, real_logits, fake = _inputs()
    terms = DiscriminatorPenalties(r1_gamma=1.0)(
        critic, 0, real, real_logits, fake, critic(fake), None
    )
    assert list(terms) == ["r1"]
    terms["r1"].backward()  # create_graph=True: the penalty trains D
    assert critic.net[1].weight.grad is not None


@pytest.mark.parametrize(
    ("loss", "names", "squashed"),
    [
        (losses.NonSaturatingLoss(), ("D(x)", "D(G(z))"), True),
        (losses.MinimaxLoss(), ("D(x)", "D(G(z))"), True),
        (losses.LeastSquaresLoss(), ("D(x)", "D(G(z))"), False),
        (losses.HingeLoss(), ("D_score(x)", "D_score(G(z))"), False),
        (losses.WassersteinGPLoss(), ("D_score(x)", "D_score(G(z))"), False),
    ],
)
def test_d_outputs_are_probabilities_only_where_the_loss_makes_them_so(
    loss: losses.GANLoss, names: tuple[str, str], squashed: bool
) -> None:
    real_logits, fake_logits = torch.tensor([4.0, 2.0]), torch.tensor([-3.0, -5.0])
    outputs = loss.discriminator_outputs(real_logits, fake_logits)
    assert tuple(outputs) == names
    expect = torch.sigmoid if squashed else (lambda t: t)
    torch.testing.assert_close(outputs[names[0]], expect(real_logits).mean())
    torch.testing.assert_close(outputs[names[1]], expect(fake_logits).mean())
