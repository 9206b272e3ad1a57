"""Seed 003's CNN in the seed's own pixel units (``model.standardize``) and its recipe.

The seed fed its networks MNIST standardized by mean and std and let G draw in those units;
ours keep [-1, 1] everywhere else, so the option must make the trainable layers see exactly the
seed's numbers and hand everything outside the networks the usual [-1, 1] images.
"""

from __future__ import annotations

import pytest
import torch
from test_training_steps import fit

from gan_lightning.build import build_gan_module
from gan_lightning.config import validate
from gan_lightning.errors import ConfigError
from gan_lightning.networks.seed003 import (
    MNIST_MEAN_STD,
    CNNDiscriminator,
    CNNGenerator,
    Standardize,
)

MEAN, STD = MNIST_MEAN_STD


def test_standardize_maps_background_and_ink_to_the_seeds_values_and_back() -> None:
    pixels = torch.tensor([-1.0, 0.0, 1.0])
    # torchvision's Normalize((0.1307,), (0.3081,)) of [0, 1] pixels 0, 0.5 and 1
    expected = (torch.tensor([0.0, 0.5, 1.0]) - MEAN) / STD
    torch.testing.assert_close(Standardize(MEAN, STD)(pixels), expected)
    torch.testing.assert_close(Standardize(MEAN, STD, inverse=True)(expected), pixels)


def test_discriminator_in_seed_units_is_the_plain_one_fed_standardized_pixels() -> None:
    torch.manual_seed(0)
    plain, seeds = CNNDiscriminator().eval(), CNNDiscriminator(standardize=MNIST_MEAN_STD).eval()
    # The same state-dict names either way: weights load across, checkpoints stay readable.
    seeds.load_state_dict(plain.state_dict())
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(seeds(images), plain(Standardize(MEAN, STD)(images)))
        assert not torch.allclose(seeds(images), plain(images))


def test_generator_in_seed_units_draws_the_plain_output_mapped_back_to_unit_range() -> None:
    torch.manual_seed(0)
    plain = CNNGenerator(output="linear")
    seeds = CNNGenerator(output="linear", standardize=list(MNIST_MEAN_STD))
    seeds.load_state_dict(plain.state_dict())
    z = torch.randn(4, 64)
    with torch.no_grad():
        raw = plain(z)  # train mode: unclamped, what D sees in training
        torch.testing.assert_close(seeds(z), (raw * STD + MEAN) * 2 - 1)
        # Sampling (eval mode) hands every caller valid [-1, 1] images.
        sampled = seeds.eval()(z)
    torch.testing.assert_close(sampled, ((raw * STD + MEAN) * 2 - 1).clamp(-1, 1))


def test_bad_standardize_settings_are_refused_by_key() -> None:
    with pytest.raises(ConfigError, match=r"model\.discriminator\.standardize=\[0\.1\] is not"):
        CNNDiscriminator(standardize=[0.1])
    with pytest.raises(ConfigError, match=r"model\.generator\.standardize=\[0\.1, 0\] is not"):
        CNNGenerator(output="linear", standardize=[0.1, 0])
    with pytest.raises(ConfigError, match=r"model\.generator\.output='relu' is not allowed"):
        CNNGenerator(output="relu")
    # A tanh ends in [-1, 1]; the standardized background alone (-0.42) maps to -1.85 there.
    with pytest.raises(ConfigError, match="set model.generator.output=linear"):
        CNNGenerator(standardize=list(MNIST_MEAN_STD))


def test_validate_names_a_bad_standardize_once_before_anything_is_built(compose_train) -> None:
    """Both networks read model.standardize by interpolation: one bad value, one line, its key."""
    cfg = compose_train(["model=cnn", "model.generator.output=linear", "model.standardize=[2, 1]"])
    with pytest.raises(ConfigError) as caught:
        validate(cfg)
    assert str(caught.value) == (
        "invalid config: model.standardize=[2, 1] is not allowed; it must be null or [mean, std] "
        "of [0, 1] pixels with std > 0, e.g. seed 003's [0.1307, 0.3081]"
    )


def test_validate_names_a_networks_own_standardize_by_its_key(compose_train) -> None:
    cfg = compose_train(["model=cnn", "model.discriminator.standardize=[0.1]"])
    with pytest.raises(ConfigError, match=r"^invalid config: model\.discriminator\.standardize="):
        validate(cfg)


def test_seed003_cnn_trains_with_dcgans_betas_and_the_seeds_units_on_request(compose_train) -> None:
    cfg = compose_train(["experiment=seed003_cnn", "data.batch_size=8"])
    validate(cfg)
    module = build_gan_module(cfg)
    # [-1, 1] pixels by default: the seed's units made G collapse more often (the recipe's header).
    assert isinstance(module.discriminator.inputs, torch.nn.Identity)
    fit(cfg, batches=1, module=module)
    assert module.d_steps == module.g_steps == 1
    for optimizer in module.trainer.optimizers:  # beta1 0.5, not the seed's 0.9 (its header)
        assert optimizer.param_groups[0]["betas"] == (0.5, 0.999)

    seeds = compose_train(["experiment=seed003_cnn", "model.standardize=[0.1307,0.3081]"])
    validate(seeds)
    module = build_gan_module(seeds)
    assert isinstance(module.discriminator.inputs, Standardize)
    assert isinstance(module.generator.net[-2], Standardize) and module.generator.net[-2].inverse
