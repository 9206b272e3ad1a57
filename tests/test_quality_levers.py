"""The quality levers of issue 27 and the training-health scalars: each changes what it should.

Top-k G updates, R1/R2 (lazy or not), LeCam, bCR, MSGAN's mode-seeking term, the adaptive
translation controller, the relativistic pairing loss and the schedules on the clock are checked
against hand computations on tiny tensors; a short fit checks that they compose and that the health
scalars reach TensorBoard. No quality figure is asserted here (benchmarks/quality_curve.py
measures those).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from pytorch_lightning.callbacks import Timer
from torch import nn

from gan_lightning.build import build_gan_module, build_trainer
from gan_lightning.errors import ConfigError
from gan_lightning.gan import health
from gan_lightning.gan.augment import BACKGROUND, AdaptiveTranslation
from gan_lightning.gan.losses import LeastSquaresLoss, NonSaturatingLoss, RelativisticLoss
from gan_lightning.gan.regularizers import DiscriminatorPenalties, LeCam, consistency_penalty
from gan_lightning.gan.schedules import scale_learning_rates_, training_progress
from gan_lightning.gan.tricks import TopK, Tricks, mode_seeking_loss, top_k_indices
from gan_lightning.pictures import read_scalars


class LinearCritic(nn.Module):
    """D(x) = <w, x>: its input gradient is w for every sample, so ||grad||^2 = ||w||^2."""

    def __init__(self, pixels: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.arange(1.0, pixels + 1) / pixels)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return images.flatten(1) @ self.w


# ------------------------------------------------------------------ top-k
def test_top_k_picks_the_fakes_d_rates_most_real() -> None:
    logits = torch.tensor([0.3, -2.0, 5.0, 1.0, -0.5, 2.5])
    best = top_k_indices(logits, keep=0.5)
    assert sorted(best.tolist()) == [2, 3, 5]
    assert top_k_indices(logits, keep=1.0) is None  # the whole batch: no selection at all
    assert top_k_indices(logits, keep=0.01).tolist() == [2]  # never fewer than one


def test_top_k_share_falls_from_the_batch_to_its_floor_with_progress() -> None:
    top_k = TopK(floor=0.5)
    assert [top_k.keep_at(p) for p in (0.0, 0.5, 1.0, 2.0)] == [1.0, 0.75, 0.5, 0.5]
    assert TopK().keep_at(0.9) == 1.0  # off


def test_with_top_k_only_the_best_fakes_give_g_a_gradient(compose_train) -> None:
    cfg = compose_train(["model=mlp", "tricks.top_k.floor=0.25", "data.batch_size=8"])
    module = build_gan_module(cfg)
    module.progress = 1.0  # the end of the run: G learns from a quarter of the batch
    fakes = torch.randn(8, 1, 28, 28, requires_grad=True)
    logits = module.discriminator(fakes).float()
    best = top_k_indices(logits, module.tricks.top_k.keep_at(module.progress))
    module.loss.generator_loss(logits[best]).backward()
    touched = fakes.grad.flatten(1).abs().sum(dim=1) > 0
    assert touched.tolist() == [i in best.tolist() for i in range(8)]
    assert set(best.tolist()) == set(logits.topk(2).indices.tolist())


# ------------------------------------------------------------------ mode seeking
def test_mode_seeking_loss_by_hand() -> None:
    # Pairs (0, 2) and (1, 3): image gaps 0.5 and 1.5 per pixel, latent gaps 2 and 2.
    images = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [-0.5, -0.5]])
    latents = torch.tensor([[0.0], [1.0], [2.0], [-1.0]])
    assert mode_seeking_loss(images, latents).item() == pytest.approx(1 / (1.0 / 2.0 + 1e-5))
    # An odd batch leaves its last fake unpaired.
    odd = mode_seeking_loss(torch.cat([images, images[:1]]), torch.cat([latents, latents[:1]]))
    assert odd.item() == pytest.approx(1 / (1.0 / 2.0 + 1e-5))
    same = mode_seeking_loss(images[:2].repeat(2, 1), latents)
    assert same.item() == pytest.approx(1e5)  # identical images: the largest loss, not inf


@pytest.mark.parametrize("overrides", [["experiment=best_conditional"], ["experiment=best"]])
def test_mode_seeking_draws_pairs_that_differ_in_their_latent_alone(
    compose_train, overrides: list[str]
) -> None:
    cfg = compose_train([*overrides, "tricks.mode_seeking=1.0", "model.clusters=3"])
    module = build_gan_module(cfg)
    module.generator.cluster_shares.fill_(1 / 3)
    fakes = module._fakes(9)
    assert torch.equal(fakes.labels[:4], fakes.labels[4:8])  # the same label and cluster
    assert not torch.equal(fakes.latents[:4, 1:], fakes.latents[4:8, 1:])
    mode_seeking_loss(fakes.images, fakes.latents).backward()  # it reaches G's weights
    assert module.generator.net[0].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ R1 / R2
def test_r1_and_r2_match_the_hand_computation_and_lazy_steps_scale_them() -> None:
    critic = LinearCritic(4)
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    fake = torch.randn(3, 1, 2, 2, requires_grad=True)
    squared_norm = critic.w.detach().square().sum()
    penalties = DiscriminatorPenalties(r1_gamma=0.2, r2_gamma=0.1)
    assert penalties.needs_grad(0) == (True, True)
    terms = penalties(critic, 0, real, critic(real), fake, critic(fake), None)
    torch.testing.assert_close(terms["r1"], 0.5 * 0.2 * squared_norm)
    torch.testing.assert_close(terms["r2"], 0.5 * 0.1 * squared_norm)

    lazy = DiscriminatorPenalties(r1_gamma=0.2, r2_gamma=0.1, reg_every=4)
    assert [lazy.due(step) for step in range(5)] == [True, False, False, False, True]
    assert lazy.needs_grad(1) == (False, False)
    assert lazy(critic, 1, real, critic(real), fake, critic(fake), None) == {}
    terms = lazy(critic, 4, real, critic(real), fake, critic(fake), None)
    torch.testing.assert_close(terms["r1"], 4 * 0.5 * 0.2 * squared_norm)  # 4x as strong
    torch.testing.assert_close(terms["r2"], 4 * 0.5 * 0.1 * squared_norm)


def test_r2_reaches_the_discriminators_weights() -> None:
    critic = LinearCritic(4)
    fake = torch.randn(3, 1, 2, 2, requires_grad=True)
    real = torch.randn(3, 1, 2, 2)
    terms = DiscriminatorPenalties(r2_gamma=1.0)(
        critic, 0, real, critic(real), fake, critic(fake), None
    )
    terms["r2"].backward()
    torch.testing.assert_close(critic.w.grad, critic.w.detach())  # d/dw (0.5 ||w||^2) = w


# ------------------------------------------------------------------ bCR
def _ink_square() -> torch.Tensor:
    """Two 28x28 images, background except a 4x4 square of ink in the middle."""
    images = torch.full((2, 1, 28, 28), BACKGROUND)
    images[:, :, 12:16, 12:16] = 1.0
    return images


def test_consistency_is_zero_for_a_d_blind_to_where_the_digit_sits() -> None:
    class InkCounter(nn.Module):  # the same logit wherever the ink is
        def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return images.flatten(1).sum(dim=1)

    images = _ink_square()
    logits = InkCounter()(images)
    assert consistency_penalty(InkCounter(), images, logits, None, max_shift=2).item() == 0.0


def test_consistency_is_the_squared_change_of_the_logit_under_a_shift_by_hand() -> None:
    critic = LinearCritic(28 * 28)  # weighs every pixel differently: position matters
    images = _ink_square()
    logits = critic(images)
    torch.manual_seed(0)
    penalty = consistency_penalty(critic, images, logits, None, max_shift=2)
    torch.manual_seed(0)  # the same shifts, done by hand with torch.roll (the ink stays inside)
    shift_y = torch.randint(-2, 3, (2, 1, 1))
    shift_x = torch.randint(-2, 3, (2, 1, 1))
    shifted = torch.stack(
        [
            torch.roll(image, (int(y), int(x)), dims=(1, 2))
            for image, y, x in zip(images, shift_y.flatten(), shift_x.flatten(), strict=True)
        ]
    )
    expected = (critic(shifted) - logits).square().mean()
    torch.testing.assert_close(penalty, expected)
    assert penalty.item() > 0  # the seed draws at least one non-zero shift here
    penalty.backward()  # both logits carry gradients into D
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0


# ------------------------------------------------------------------ LeCam
def test_lecam_penalty_and_its_running_means() -> None:
    lecam = LeCam(decay=0.9)
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    # First call: both running means are 0.
    expected = torch.tensor([2.0, 4.0]).square().mean() + torch.tensor([1.0, 0.0]).square().mean()
    torch.testing.assert_close(lecam(real, fake), expected)
    torch.testing.assert_close(lecam.real_mean, torch.tensor(0.1 * 3.0))
    torch.testing.assert_close(lecam.fake_mean, torch.tensor(0.0))
    lecam(real, fake)
    torch.testing.assert_close(lecam.real_mean, torch.tensor(0.9 * 0.3 + 0.1 * 3.0))
    assert set(lecam.state_dict()) == {"real_mean", "fake_mean"}  # travels in the checkpoint


# ------------------------------------------------------------------ adaptive augmentation
def test_the_augment_probability_moves_with_r_t() -> None:
    ada = AdaptiveTranslation(target=0.6, kimg=0.064, interval=2, max_shift=3)
    overfit = torch.ones(16)  # D sure of every real: r_t = 1 > 0.6
    ada.observe(overfit, d_step=0)
    assert ada.p.item() == 0.0  # adjusted every 2 D steps only
    ada.observe(overfit, d_step=1)
    # 32 images seen of the 64 (kimg=0.064) that take p from 0 to 1.
    assert ada.p.item() == pytest.approx(0.5)
    assert ada.r_t.item() == 1.0
    unsure = torch.tensor([1.0, -1.0] * 8)  # r_t = 0 < 0.6
    for step in range(2, 8):
        ada.observe(unsure, d_step=step)
    assert ada.p.item() == 0.0  # lowered, and clamped at 0


def test_adaptive_translation_shifts_whole_pixels_only_when_chosen() -> None:
    ada = AdaptiveTranslation(target=0.6, kimg=1.0, interval=4, max_shift=3)
    images = torch.rand(64, 1, 8, 8) * 2 - 1
    assert torch.equal(ada(images), images)  # p = 0: untouched
    ada.p.fill_(1.0)
    torch.manual_seed(0)
    shifted = ada(images)
    assert not torch.equal(shifted, images)
    # Every pixel is an input pixel or the background: a shift, not an interpolation.
    values = set(images.flatten().tolist()) | {BACKGROUND}
    assert set(shifted.flatten().tolist()) <= values


# ------------------------------------------------------------------ relativistic pairing
def test_relativistic_pairing_loss_by_hand() -> None:
    loss = RelativisticLoss()
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    terms = loss.discriminator_loss(real, fake, real, fake)
    torch.testing.assert_close(terms["pair"], F.softplus(torch.tensor([-1.0, 1.0])).mean())
    torch.testing.assert_close(
        loss.generator_loss(fake, real), F.softplus(torch.tensor([1.0, -1.0])).mean()
    )
    assert loss.pairs_real_and_fake and not loss.uses_targets
    with pytest.raises(ValueError, match="pairs each fake with a real"):
        loss.generator_loss(fake)


# ------------------------------------------------------------------ schedules on the clock
class FakeTimer(Timer):
    def __init__(self, elapsed: float, remaining: float | None) -> None:
        super().__init__()
        self._elapsed, self._remaining = elapsed, remaining

    def time_elapsed(self, stage="train") -> float:  # type: ignore[override]
        return self._elapsed

    def time_remaining(self, stage="train") -> float | None:  # type: ignore[override]
        return self._remaining


def fake_trainer(timer: Timer | None, epoch: int = 0, max_epochs: int = 100000):
    callbacks = [timer] if timer is not None else []
    return SimpleNamespace(
        callbacks=callbacks, num_training_batches=10, current_epoch=epoch, max_epochs=max_epochs
    )


def test_progress_follows_the_clock_or_the_epochs_whichever_ends_the_run() -> None:
    assert training_progress(fake_trainer(FakeTimer(150.0, 450.0)), 0) == pytest.approx(0.25)
    assert training_progress(fake_trainer(None, epoch=5, max_epochs=10), 5) == pytest.approx(0.55)
    clock_first = fake_trainer(FakeTimer(300.0, 300.0), epoch=1, max_epochs=10)
    assert training_progress(clock_first, 0) == pytest.approx(0.5)
    assert training_progress(fake_trainer(FakeTimer(10.0, 0.0)), 0) == 1.0


def test_cosine_decay_on_the_clock_keeps_its_base_through_a_resume() -> None:
    tricks = Tricks(lr_decay_to=0.25)
    assert tricks.lr_factor_at(0.0) == 1.0
    assert tricks.lr_factor_at(0.5) == pytest.approx(0.625)
    assert tricks.lr_factor_at(1.0) == pytest.approx(0.25)
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=4e-4)
    scale_learning_rates_([optimizer], tricks.lr_factor_at(1.0))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    resumed = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=4e-4)
    resumed.load_state_dict(optimizer.state_dict())  # the base travels in the state
    scale_learning_rates_([resumed], math.cos(0.0))
    assert resumed.param_groups[0]["lr"] == pytest.approx(4e-4)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"top_k": {"floor": 0.0}}, "tricks.top_k.floor=0"),
        ({"lecam": {"weight": -1}}, "tricks.lecam.weight=-1"),
        ({"ada": {"target": 2}}, "tricks.ada.target=2"),
        ({"ada": {"interval": 0}}, "tricks.ada.interval=0"),
        ({"r2_gamma": "big"}, "tricks.r2_gamma='big'"),
        ({"lr_decay_to": 1.5}, "tricks.lr_decay_to=1.5"),
        ({"mode_seeking": -1}, "tricks.mode_seeking=-1"),
        ({"consistency": {"weight": -1}}, "tricks.consistency.weight=-1"),
        ({"consistency": {"max_shift": 0}}, "tricks.consistency.max_shift=0"),
        ({"reg_every": 4}, "tricks.reg_every=4 spaces out R1/R2, but both are off"),
    ],
)
def test_bad_lever_values_are_refused_by_key(override: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Tricks.from_config(override)


def test_a_clock_decay_and_an_epoch_scheduler_are_not_combined(compose_train) -> None:
    cfg = compose_train(["model=mlp", "tricks.lr_decay_to=0.25", "scheduler.g=step"])
    with pytest.raises(ConfigError, match="tricks.lr_decay_to=0.25 and scheduler"):
        build_gan_module(cfg)


# ------------------------------------------------------------------ health
def test_discriminator_health_by_hand() -> None:
    real, fake = torch.tensor([2.0, 1.0, -1.0, 3.0]), torch.tensor([-1.0, 0.5, -2.0, -3.0])
    values = health.discriminator_health(*NonSaturatingLoss().realness(real, fake))
    assert values["health/r_t"].item() == pytest.approx(0.5)
    assert values["health/d_acc_real"].item() == pytest.approx(0.75)
    assert values["health/d_acc_fake"].item() == pytest.approx(0.75)
    lsgan = LeastSquaresLoss().realness(torch.tensor([0.6, 0.4]), torch.tensor([0.4, 0.7]))
    assert health.discriminator_health(*lsgan)["health/d_acc_real"].item() == pytest.approx(0.5)


def test_a_relativistic_ds_verdict_is_on_each_pair_not_on_its_offset() -> None:
    # Every output shifted up by 10 changes no relativistic loss, and no verdict either.
    real, fake = torch.tensor([12.0, 11.0, 10.5]), torch.tensor([11.0, 11.5, 10.0])
    values = health.discriminator_health(*RelativisticLoss().realness(real, fake))
    assert values["health/d_acc_real"].item() == pytest.approx(2 / 3)
    assert values["health/d_acc_fake"].item() == pytest.approx(2 / 3)
    assert values["health/r_t"].item() == pytest.approx(1 / 3)


def test_a_generator_collapsed_to_one_image_is_named() -> None:
    one_image = torch.rand(1, 1, 28, 28).expand(16, 1, 28, 28)
    spread = health.sample_spread(one_image).item()
    assert spread == 0.0
    assert "collapsed to one image in epoch 3" in health.collapse_message(spread, 3)
    varied = health.sample_spread(torch.rand(16, 1, 28, 28) * 2 - 1).item()
    assert health.collapse_message(varied, 3) is None


def test_every_lever_composes_and_the_health_scalars_reach_tensorboard(
    compose_train, tmp_path: Path
) -> None:
    cfg = compose_train(
        [
            "model=mlp",  # no BatchNorm in D: the per-sample penalties are exact
            "loss=relativistic",
            "data.batch_size=8",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=8",
            "callbacks.generative_metrics=null",
            "callbacks.training_pictures=null",
            "tricks.r1_gamma=0.1",
            "tricks.r2_gamma=0.1",
            "tricks.reg_every=2",
            "tricks.top_k.floor=0.5",
            "tricks.lecam.weight=0.3",
            "tricks.ada.target=0.6",
            "tricks.ada.interval=2",
            "tricks.lr_decay_to=0.25",
            "tricks.mode_seeking=1.0",
            "tricks.consistency.weight=10",
        ]
    )
    module = build_gan_module(cfg)
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    scalars = read_scalars(tmp_path / "run" / "tensorboard")
    for name in (
        "r_t",
        "d_acc_real",
        "d_acc_fake",
        "grad_norm_d",
        "grad_norm_g",
        "sample_spread",
        "ada_p",
    ):
        assert f"health/{name}_epoch" in scalars, name
    assert {
        "loss/d/pair_epoch",
        "loss/d/r1_epoch",
        "loss/d/r2_epoch",
        "loss/d/lecam_epoch",
        "loss/d/consistency_epoch",
        "loss/g/mode_seeking_epoch",
    } <= set(scalars)
    assert module.progress == pytest.approx(1.0, abs=0.2)  # one epoch of max_epochs=1
    (opt_g, _) = module.optimizers()
    assert opt_g.param_groups[0]["lr"] < opt_g.param_groups[0]["base_lr"]
