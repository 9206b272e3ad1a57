"""Each stabilization trick, losses and regularizers, shown on the tensors they change."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_lightning.gan import augment, losses
from gan_lightning.gan.ema import make_ema, sampling_copy, update_ema_
from gan_lightning.gan.regularizers import r1_penalty, wgan_gradient_penalty
from gan_lightning.gan.tricks import (
    InstanceNoise,
    LabelSmoothing,
    Tricks,
    add_instance_noise,
    discriminator_targets,
    flip_targets,
    make_targets,
)
from gan_lightning.networks.mlp import MLPGenerator


def test_constant_smoothing_sets_every_target() -> None:
    targets = make_targets(0.9, 1.0, torch.empty(1000))
    assert torch.all(targets == 0.9)


def test_range_smoothing_draws_inside_the_range_and_spreads() -> None:
    targets = make_targets((0.7, 1.0), 1.0, torch.empty(10_000))
    assert targets.min() >= 0.7 and targets.max() <= 1.0
    assert targets.std() > 0.05  # really random per sample, not one value


def test_flip_rate_is_near_the_configured_probability() -> None:
    torch.manual_seed(0)
    real, fake = torch.ones(100_000), torch.zeros(100_000)
    flipped_real, flipped_fake = flip_targets(real, fake, 0.2)
    assert abs((flipped_real == 0).float().mean().item() - 0.2) < 0.01
    # A flipped sample swaps both targets, so the pair still sums to one.
    assert torch.all(flipped_real + flipped_fake == 1)


def test_seed002_targets_combine_smoothing_and_flipping() -> None:
    smoothing = LabelSmoothing(real=(0.7, 1.0), fake=(0.0, 0.3))
    tricks = Tricks(label_smoothing=smoothing, label_flip_prob=0.1)
    real, fake = discriminator_targets(tricks, torch.empty(50_000))
    flipped = real <= 0.3
    assert abs(flipped.float().mean().item() - 0.1) < 0.01
    assert torch.all((real >= 0.7) | flipped) and torch.all((fake <= 0.3) | flipped)


def test_default_targets_are_hard_labels() -> None:
    real, fake = discriminator_targets(Tricks(), torch.empty(8))
    assert torch.all(real == 1) and torch.all(fake == 0)


def test_instance_noise_anneals_linearly_to_zero() -> None:
    noise = InstanceNoise(std=0.2, anneal_steps=100)
    assert noise.std_at(0) == pytest.approx(0.2)
    assert noise.std_at(50) == pytest.approx(0.1)
    assert noise.std_at(100) == 0.0 and noise.std_at(500) == 0.0
    images = torch.zeros(4, 1, 28, 28)
    assert add_instance_noise(images, 0.0) is images
    assert add_instance_noise(images, 0.5).std() > 0.4


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"label_smoothing": {"real": 1.2}}, "tricks.label_smoothing.real"),
        ({"label_smoothing": {"fake": [0.3, 0.1]}}, "tricks.label_smoothing.fake"),
        ({"label_flip_prob": 1.5}, "tricks.label_flip_prob"),
        ({"d_every_n_batches": 0}, "tricks.d_every_n_batches"),
        ({"g_steps_per_d": -1}, "tricks.g_steps_per_d"),
        ({"ema_decay": 1.0}, "tricks.ema_decay"),
        ({"diffaugment": ["rotate"]}, "tricks.diffaugment"),
        ({"n_critic": 5, "d_every_n_batches": 2}, "tricks.n_critic"),
        ({"label_smothing": {"real": 0.9}}, "unknown keys"),
        ({"instance_noise": {"sdt": 0.1}}, "tricks.instance_noise has unknown keys"),
        ({"spectral_norm": "yes"}, "tricks.spectral_norm='yes' is not allowed"),
        ({"instance_noise": {"std": "x"}}, "tricks.instance_noise.std='x' is not allowed"),
        ({"ema_kimg": float("inf")}, "tricks.ema_kimg=inf is not allowed"),
    ],
)
def test_bad_trick_values_name_the_key(config: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        Tricks.from_config(config)


def test_every_bad_trick_value_is_reported_at_once() -> None:
    with pytest.raises(ValueError) as caught:
        Tricks.from_config({"label_flip_prob": 2, "n_critic": 0, "r1_gamma": -1})
    assert str(caught.value).splitlines() == [
        "tricks.label_flip_prob=2 is not allowed; it must be a number in [0, 1]",
        "tricks.n_critic=0 is not allowed; it must be an integer >= 1",
        "tricks.r1_gamma=-1 is not allowed; it must be a number >= 0",
    ]


def test_label_smoothing_is_nested_as_its_config_keys() -> None:
    tricks = Tricks.from_config({"label_smoothing": {"real": [0.7, 1.0], "fake": None}})
    assert tricks.label_smoothing == LabelSmoothing(real=(0.7, 1.0))
    assert tricks.uses_targets and not Tricks().uses_targets


def test_diffaugment_accepts_a_comma_separated_string() -> None:
    tricks = Tricks.from_config({"diffaugment": "translation, cutout"})
    assert tricks.diffaugment == ("translation", "cutout")


def test_translation_shifts_content_and_fills_background() -> None:
    torch.manual_seed(0)
    images = torch.full((64, 1, 16, 16), -1.0)
    images[:, :, 6:10, 6:10] = 1.0
    shifted = augment.translation(images, ratio=0.125)
    assert shifted.shape == images.shape
    # The bright square keeps its size (shifts of <= 2 px cannot push it out) but moves.
    assert torch.all((shifted == 1).sum(dim=(1, 2, 3)) == 16)
    assert (shifted != images).any(dim=(1, 2, 3)).float().mean() > 0.5
    assert set(shifted.unique().tolist()) == {-1.0, 1.0}


def test_cutout_blanks_one_square_per_image() -> None:
    images = torch.ones(8, 1, 28, 28)
    cut = augment.cutout(images, ratio=0.5)
    assert torch.all((cut == augment.BACKGROUND).sum(dim=(1, 2, 3)) == 14 * 14)


def test_diffaugment_keeps_gradients_flowing_to_the_generator() -> None:
    fake = torch.zeros(4, 1, 28, 28, requires_grad=True)
    augment.diff_augment(fake, ["translation", "cutout", "brightness"]).sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


class _Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).view(-1)


def test_gradient_penalties_are_positive_and_finite() -> None:
    torch.manual_seed(0)
    critic = _Critic()
    real, fake = torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    gp = wgan_gradient_penalty(critic, real, fake)
    assert torch.isfinite(gp) and gp > 0
    real_in = real.clone().requires_grad_(True)
    r1 = r1_penalty(critic(real_in), real_in)
    # For a linear critic the input gradient is its weight vector: R1 = ||w||^2 exactly.
    assert r1.item() == pytest.approx(critic.net[1].weight.square().sum().item(), rel=1e-5)
    r1.backward()  # create_graph=True: the penalty itself trains D
    assert critic.net[1].weight.grad is not None


def test_ema_follows_the_decay_and_differs_from_the_live_weights() -> None:
    torch.manual_seed(0)
    live = MLPGenerator(latent_dim=8)
    ema = make_ema(live)
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    update_ema_(ema, live, decay=0.9)
    for old, new, raw in zip(before, ema.parameters(), live.parameters(), strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * raw)
        assert not torch.equal(new, raw)
    assert not any(p.requires_grad for p in ema.parameters())


def test_sampling_copy_recomputes_batchnorm_statistics_without_touching_the_source() -> None:
    from gan_lightning.networks.dcgan import DCGANGenerator

    generator = DCGANGenerator(latent_dim=16)
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    rng_state = torch.get_rng_state()
    sampler = sampling_copy(generator, batches=2, batch_size=32)
    assert not sampler.training
    assert torch.equal(torch.get_rng_state(), rng_state)  # the training RNG is untouched
    norm = next(m for m in sampler.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))
    for key, value in generator.state_dict().items():
        assert torch.equal(value, state[key])


@pytest.mark.parametrize(
    "loss",
    [
        losses.NonSaturatingLoss(),
        losses.MinimaxLoss(),
        losses.LeastSquaresLoss(),
        losses.HingeLoss(),
        losses.WassersteinGPLoss(),
    ],
)
def test_losses_reward_a_discriminator_that_separates_real_from_fake(loss) -> None:
    ones, zeros = torch.ones(16), torch.zeros(16)
    good = sum(loss.discriminator_loss(3 * ones, -3 * ones, ones, zeros).values())
    bad = sum(loss.discriminator_loss(-3 * ones, 3 * ones, ones, zeros).values())
    assert good < bad
    # G's loss falls as D is fooled more.
    assert loss.generator_loss(3 * ones) < loss.generator_loss(-3 * ones)


def test_minimax_generator_gradient_saturates_where_non_saturating_does_not() -> None:
    """The teaching point of loss=minimax: a confident D starves G of gradient."""
    grads = {}
    for name, loss in (("minimax", losses.MinimaxLoss()), ("bce", losses.NonSaturatingLoss())):
        logits = torch.full((4,), -8.0, requires_grad=True)  # D rejects the fakes
        loss.generator_loss(logits).backward()
        grads[name] = logits.grad.abs().mean().item()
    assert grads["minimax"] < 1e-3 < grads["bce"]


def test_ema_decay_warms_up_so_the_random_start_fades_quickly() -> None:
    from gan_lightning.gan.ema import warmed_up_decay

    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_up_decay(0.999, 890) == pytest.approx(0.99, abs=1e-4)
    assert warmed_up_decay(0.999, 100_000) == 0.999
    # The weight the average still gives its starting point after 1,000 G steps:
    start_weight = math.prod(warmed_up_decay(0.999, step) for step in range(1000))
    assert start_weight < 1e-6 < 0.999**1000


def test_ema_schedule_takes_the_half_life_when_set_else_the_warmed_up_decay() -> None:
    from gan_lightning.gan.ema import DecaySchedule, half_life_decay, warmed_up_decay

    assert DecaySchedule(decay=0.999).at(5, 64) == warmed_up_decay(0.999, 5)
    half_life = DecaySchedule(half_life_kimg=10, rampup=0.05)
    assert half_life.at(100, 64) == half_life_decay(10, 0.05, 64, 6_400)
    with pytest.raises(ValueError, match="tricks.ema_decay or tricks.ema_kimg"):
        DecaySchedule().at(0, 64)
