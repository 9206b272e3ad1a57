"""The options behind the fast recipes: lean nets, EMA half-life, fake reuse, latent prior."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from test_training_steps import fit, snapshot

from gan_lightning.config import validate
from gan_lightning.errors import ConfigError
from gan_lightning.gan.ema import half_life_decay, sampling_copy
from gan_lightning.gan.tricks import Tricks
from gan_lightning.networks.latents import sample_latents
from gan_lightning.networks.layers import MinibatchStdDev
from gan_lightning.networks.lean import ConditionalBatchNorm, LeanDiscriminator, LeanGenerator

PACKAGE = Path(__file__).resolve().parents[1] / "gan_lightning"


# ---------------------------------------------------------------------------- EMA half-life
def test_ema_half_life_matches_stylegan2_ada_by_hand() -> None:
    # Ramp-up: after 6,400 images the half-life is 0.05 x 6,400 = 320 images, not 10,000.
    assert half_life_decay(10, 0.05, 64, 6_400) == pytest.approx(0.5 ** (64 / 320))
    # Past 200k images the ramp-up no longer binds: 10 kimg.
    assert half_life_decay(10, 0.05, 64, 1_000_000) == pytest.approx(0.5 ** (64 / 10_000))
    assert half_life_decay(10, None, 64, 64) == pytest.approx(0.5 ** (64 / 10_000))
    # The half-life is in images: twice the batch, the same forgetting per image.
    assert half_life_decay(10, None, 128, 0) == pytest.approx(half_life_decay(10, None, 64, 0) ** 2)
    # After exactly one half-life of images the start weighs one half.
    steps = 10_000 // 64
    start_weight = math.prod(half_life_decay(10, None, 64, 0) for _ in range(steps))
    assert start_weight == pytest.approx(0.5 ** (steps * 64 / 10_000))


def test_ema_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="set one of them"):
        Tricks(ema_decay=0.999, ema_kimg=10)
    with pytest.raises(ValueError, match="tricks.ema_rampup"):
        Tricks(ema_rampup=0.05)
    with pytest.raises(ValueError, match="tricks.ema_kimg=0"):
        Tricks(ema_kimg=0)
    assert Tricks(ema_kimg=10, ema_rampup=0.05).uses_ema


def test_module_uses_the_half_life_schedule(compose_train) -> None:
    cfg = compose_train(["model=lean", "tricks.ema_kimg=1", "tricks.ema_rampup=0.5"])
    module = fit(cfg, batches=3)
    assert module.g_ema is not None
    batch = cfg.data.batch_size
    decay = module.ema_schedule.at(module.g_steps, batch)
    assert decay == pytest.approx(0.5 ** (batch / (0.5 * 3 * batch)))


# ---------------------------------------------------------------------------- lean networks
def test_conditional_batchnorm_starts_as_identity_and_depends_on_the_label() -> None:
    torch.manual_seed(0)
    norm = ConditionalBatchNorm(8, num_classes=3, spatial=True)
    x = torch.randn(6, 8, 4, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    plain = torch.nn.functional.batch_norm(x, None, None, training=True)
    torch.testing.assert_close(norm(x, labels), plain)
    with torch.no_grad():
        norm.gain.weight[1] += 1.0  # class 1: gain 2
    out = norm(x, labels)
    torch.testing.assert_close(out[labels == 1], 2 * plain[labels == 1])
    torch.testing.assert_close(out[labels != 1], plain[labels != 1])


def test_minibatch_std_adds_one_map_holding_the_group_std() -> None:
    layer = MinibatchStdDev(group_size=4)
    x = torch.randn(8, 3, 5, 5)
    out = layer(x)
    assert out.shape == (8, 4, 5, 5)
    torch.testing.assert_close(out[:, :3], x)
    # Samples i and i + 2 form the groups (view(4, -1, ...)): by hand for the first group.
    group = x.view(4, 2, 3, 5, 5)[:, 0]
    expected = group.std(dim=0, unbiased=False).mean()
    assert out[0, 3, 0, 0].item() == pytest.approx(expected.item(), rel=1e-4)
    # A batch of identical images has (almost) no spread: what a collapsed G produces.
    same = layer(x[:1].expand(8, -1, -1, -1))
    assert same[:, 3].abs().max() < 1e-3
    assert layer(x[:1]).shape == (1, 4, 5, 5)  # batch 1: a zero map, shapes stay fixed


def test_minibatch_std_lets_one_sample_change_another_ones_logit() -> None:
    torch.manual_seed(0)
    disc = LeanDiscriminator(width=8, minibatch_std=True).eval()
    plain = LeanDiscriminator(width=8).eval()
    x = torch.randn(4, 1, 28, 28)
    changed = x.clone()
    changed[1] += 1.0
    assert not torch.allclose(disc(x)[0], disc(changed)[0])
    torch.testing.assert_close(plain(x)[0], plain(changed)[0])


def test_lean_networks_refuse_bad_settings_by_key() -> None:
    """Built directly (a notebook), in the words validate uses, every problem at once."""
    with pytest.raises(ConfigError) as caught:
        LeanDiscriminator(width=0, norm="layer", minibatch_std="yes")
    assert str(caught.value).splitlines() == [
        "model.discriminator.width=0 is not allowed; it must be an integer >= 1",
        "model.discriminator.norm='layer' is not allowed; it must be none or batch",
        "model.discriminator.minibatch_std='yes' is not allowed; it must be true or false",
    ]
    with pytest.raises(ConfigError, match=r"^model\.generator\.latent_prior='cauchy' is not"):
        LeanGenerator(latent_prior="cauchy")
    with pytest.raises(ConfigError, match=r"^model\.generator\.num_classes=-1 is not allowed"):
        LeanGenerator(num_classes=-1)


def test_validate_reports_bad_lean_settings_by_key(compose_train) -> None:
    overrides = [
        "model=lean",
        "model.generator.width=0",  # set directly, not through model.width
        "model.discriminator.width=2.5",
        "model.discriminator.norm=layer",
    ]
    with pytest.raises(ConfigError, match="3 problems") as caught:
        validate(compose_train(overrides))
    for line in (
        "model.generator.width=0 is not allowed; it must be an integer >= 1",
        "model.discriminator.width=2.5 is not allowed; it must be an integer >= 1",
        "model.discriminator.norm='layer' is not allowed; it must be none or batch",
    ):
        assert f"  - {line}" in str(caught.value).splitlines()
    # A bad model.latent_prior feeds the generator's key: one line, under the key the user set.
    with pytest.raises(ConfigError) as caught:
        validate(compose_train(["model=lean", "model.latent_prior=cauchy"]))
    assert str(caught.value) == (
        "invalid config: model.latent_prior='cauchy' is not allowed; it must be gaussian or uniform"
    )


def test_r1_adds_its_term_and_changes_the_discriminator_update(compose_train) -> None:
    torch.manual_seed(0)
    base = ["model=lean", "trainer.log_every_n_steps=1"]
    plain = fit(compose_train(base), batches=2)
    torch.manual_seed(0)
    penalised = fit(compose_train([*base, "tricks.r1_gamma=10.0"]), batches=2)
    assert "loss/d/r1_epoch" in penalised.trainer.callback_metrics
    assert "loss/d/r1_epoch" not in plain.trainer.callback_metrics
    assert any(
        not torch.allclose(a, b)
        for a, b in zip(
            snapshot(plain.discriminator).values(),
            snapshot(penalised.discriminator).values(),
            strict=True,
        )
    )


# ---------------------------------------------------------------------------- fake reuse
class _Recorded:
    """Stands in for ``GANModule.draw_latents``: the same latents, in order, for two modules."""

    def __init__(self, latents: list[torch.Tensor]) -> None:
        self.latents, self.calls = list(latents), 0

    def __call__(self, batch_size: int) -> torch.Tensor:
        self.calls += 1
        return self.latents.pop(0)[:batch_size]


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["tricks.g_steps_per_d=2"],
        ["tricks.diffaugment=[translation,cutout]", "tricks.ema_kimg=1"],
    ],
    ids=["plain", "g_steps_per_d=2", "diffaugment+ema"],
)
def test_reused_fakes_give_exactly_the_update_of_fresh_fakes_from_the_same_latents(
    compose_train, extra: list[str]
) -> None:
    """Reuse only skips a generator pass: with the latents fixed, weights end up identical."""
    from gan_lightning.build import build_gan_module

    base = ["model=lean", "model.width=8", *extra]
    g_steps = 2 if "tricks.g_steps_per_d=2" in extra else 1
    torch.manual_seed(0)
    z = [torch.randn(64, 64) for _ in range(1 + g_steps)]
    modules, recorders = {}, {}
    for reuse in (False, True):
        torch.manual_seed(1)
        module = build_gan_module(compose_train([*base, f"tricks.reuse_fakes={reuse}"]))
        # Without reuse D and the first G step each draw: give both the same latents.
        latents = [z[0], z[0], *z[1:g_steps]] if not reuse else [z[0], *z[1:g_steps]]
        recorders[reuse] = module.draw_latents = _Recorded(latents)
        torch.manual_seed(2)
        modules[reuse] = fit(compose_train([*base, f"tricks.reuse_fakes={reuse}"]), 1, module)
    assert (recorders[False].calls, recorders[True].calls) == (1 + g_steps, g_steps)
    for net in ("generator", "discriminator"):
        fresh = snapshot(getattr(modules[False], net))
        reused = snapshot(getattr(modules[True], net))
        for name in fresh:
            torch.testing.assert_close(reused[name], fresh[name], msg=f"{net}.{name}")
    if modules[True].g_ema is not None:
        for a, b in zip(
            modules[True].g_ema.parameters(), modules[False].g_ema.parameters(), strict=True
        ):
            torch.testing.assert_close(a, b)


def test_reuse_falls_back_to_fresh_fakes_when_d_skips_the_batch(compose_train) -> None:
    cfg = compose_train(["model=lean", "tricks.reuse_fakes=true", "tricks.d_every_n_batches=2"])
    module = fit(cfg, batches=3)
    assert (module.d_steps, module.g_steps) == (2, 3)


# ---------------------------------------------------------------------------- latent prior
def test_sample_latents_draws_from_the_generators_prior() -> None:
    rng = torch.Generator().manual_seed(0)
    uniform = sample_latents(LeanGenerator(latent_prior="uniform"), 4000, rng=rng)
    gaussian = sample_latents(LeanGenerator(), 4000, rng=rng)
    assert uniform.shape == gaussian.shape == (4000, 64)
    assert uniform.abs().max() <= 1 and uniform.std().item() == pytest.approx(3**-0.5, abs=0.01)
    assert gaussian.abs().max() > 3 and gaussian.std().item() == pytest.approx(1.0, abs=0.01)


def test_no_latent_is_drawn_outside_sample_latents() -> None:
    """Every place that feeds a generator goes through the prior, so none can forget it."""
    offenders = [
        f"{path.relative_to(PACKAGE)}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "latents.py"
        for line in path.read_text().splitlines()
        if re.search(r"torch\.(randn|rand)\(.*latent_dim", line)
    ]
    assert offenders == []


def test_uniform_prior_reaches_training_fixed_noise_recalibration_and_metrics(
    compose_train,
) -> None:
    from gan_lightning.build import build_gan_module
    from gan_lightning.metrics.suite import add_generated

    cfg = compose_train(["model=lean", "model.width=8", "model.latent_prior=uniform"])
    module = build_gan_module(cfg)
    assert module.generator.latent_prior == "uniform"
    assert module.fixed_noise.abs().max() <= 1
    seen: list[torch.Tensor] = []
    module.generator.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    fit(cfg, batches=1, module=module)
    sampling_copy(module.generator, batches=1, batch_size=32)

    class _Suite:
        def update_fake(self, images, labels):
            pass

    add_generated(_Suite(), module.generator, 16, batch_size=8, seed=0)
    assert len(seen) >= 4 and all(z.abs().max() <= 1 for z in seen)
    assert sum(z.numel() for z in seen) > 64 * 64  # not one batch: training, copy, metrics


def test_seed004_experiment_uses_the_seed_codes_prior_and_generator_dropout(compose_train) -> None:
    from gan_lightning.build import build_gan_module

    module = build_gan_module(compose_train(["experiment=seed004"]))
    assert module.generator.latent_prior == "uniform"
    dropouts = [m for m in module.generator.modules() if isinstance(m, torch.nn.Dropout)]
    assert [m.p for m in dropouts] == [0.3, 0.3, 0.3]
