"""The sampling ``temperature``: what it scales, what it leaves alone, and where it is read from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from sampling_helpers import compose_config, make_checkpoint

from gan_lightning.build import build_gan_module
from gan_lightning.config import validate
from gan_lightning.errors import ConfigError
from gan_lightning.evaluate import results_table
from gan_lightning.gan.ema import sampling_copy
from gan_lightning.generation import load_generator
from gan_lightning.networks.cgan import CGANGenerator
from gan_lightning.networks.latents import checked_temperature, sample_latents
from gan_lightning.runs.checkpoints import load_checkpoint
from gan_lightning.sample import sample


def draw(generator: torch.nn.Module, count: int = 64) -> torch.Tensor:
    return sample_latents(generator, count, rng=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("prior", ["gaussian", "uniform"])
def test_a_sampling_copy_draws_the_prior_scaled_by_its_temperature(prior: str) -> None:
    generator = CGANGenerator(latent_dim=6, num_classes=0, latent_prior=prior)
    as_trained = draw(generator)
    hotter = sampling_copy(generator, temperature=1.5, batches=1, batch_size=8)
    assert torch.equal(draw(hotter), as_trained * 1.5)
    assert torch.equal(draw(generator), as_trained)  # the copy's, not the network's


def test_the_entry_that_picks_a_cluster_keeps_its_value() -> None:
    generator = CGANGenerator(latent_dim=6, num_classes=0, clusters=4)
    generator.cluster_shares.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    as_trained = draw(generator, 4096)
    hot = draw(sampling_copy(generator, temperature=2.0, batches=1, batch_size=8), 4096)
    assert torch.equal(hot[:, 0], as_trained[:, 0])
    assert torch.equal(hot[:, 1:], as_trained[:, 1:] * 2)
    # So the clusters come in the training images' shares at any temperature.
    assert torch.equal(generator.cluster_of(hot), generator.cluster_of(as_trained))


def test_batchnorm_right_after_a_latent_only_layer_undoes_the_temperature() -> None:
    """What docs/sampling.md says: the statistics are taken at the copy's own temperature."""
    torch.manual_seed(0)
    generator = CGANGenerator(num_classes=0)  # Linear(z) -> BatchNorm first
    as_trained, hotter = sampling_copy(generator), sampling_copy(generator, temperature=1.5)
    assert not torch.equal(draw(as_trained, 16), draw(hotter, 16))
    torch.testing.assert_close(
        as_trained(draw(as_trained, 16)), hotter(draw(hotter, 16)), atol=1e-4, rtol=0
    )


def test_training_draws_the_prior_and_everything_seen_draws_the_temperature(
    compose_train: Callable[[list[str]], DictConfig],
) -> None:
    cfg = compose_train(["model=dcgan28", "temperature=1.25"])
    validate(cfg)
    module = build_gan_module(cfg)
    torch.manual_seed(0)
    trained_on = module.draw_latents(8)
    torch.manual_seed(0)
    assert torch.equal(trained_on, torch.randn(8, module.generator.latent_dim))
    sampler = module.sampling_generator()
    assert sampler.sampling_temperature == 1.25
    assert torch.equal(draw(sampler), draw(module.generator) * 1.25)


@pytest.fixture(scope="module")
def warm_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """``best``'s network: with clusters, a temperature changes the images (without, BatchNorm
    after the latent-only first layer undoes it, as the test above shows)."""
    folder = tmp_path_factory.mktemp("warm")
    overrides = ["model=dcgan28", "model.clusters=4", "temperature=1.2"]
    return make_checkpoint(folder, tiny_mnist_root, overrides)


def test_a_checkpoint_is_sampled_at_its_runs_temperature_unless_told(
    warm_ckpt: Path, tmp_path: Path
) -> None:
    assert load_generator(warm_ckpt)[0].sampling_temperature == 1.2
    assert load_generator(warm_ckpt, temperature=1.0)[0].sampling_temperature == 1.0
    # A run from before the key existed was sampled at the prior's scale, and still is.
    checkpoint = load_checkpoint(warm_ckpt)
    del checkpoint["run_config"]["temperature"]
    older = tmp_path / "older.ckpt"
    torch.save(checkpoint, older)
    assert load_generator(older)[0].sampling_temperature == 1.0


def test_sample_writes_the_images_of_the_temperature_asked_for(
    warm_ckpt: Path, tmp_path: Path
) -> None:
    def written(*overrides: str) -> dict[str, np.ndarray]:
        out = tmp_path / f"{len(overrides)}.npz"
        cfg = compose_config(
            "sample", [f"ckpt_path={warm_ckpt}", f"out={out}", "num_samples=8", *overrides]
        )
        return dict(np.load(sample(cfg), allow_pickle=False))

    own, as_trained = written(), written("temperature=1.0")
    assert own["temperature"] == pytest.approx(1.2) and "temperature" not in as_trained
    # More than a pixel rounded the other way (all a latent-only first layer under BatchNorm
    # would show) after two training batches.
    change = np.abs(own["images"].astype(int) - as_trained["images"].astype(int))
    assert change.max() > 2


@pytest.mark.parametrize("value", [0, -1.0, "hot", True])
def test_a_temperature_that_is_not_a_positive_number_is_refused_by_name(
    value: object, compose_train: Callable[[list[str]], DictConfig]
) -> None:
    with pytest.raises(
        ConfigError, match=r"temperature=.* is not allowed; it must be a number > 0"
    ):
        checked_temperature(value)
    cfg: DictConfig = compose_train([])
    cfg.temperature = value
    with pytest.raises(ConfigError, match=r"temperature="):
        validate(cfg)


def test_the_results_table_names_a_run_scored_at_another_temperature() -> None:
    row = {"run": "best", "num_fake": 10, "fid": 1.0}
    table = results_table([row | {"temperature": 1.1}, row | {"run": "plain"}], None)
    names = list(table.columns[0].cells)
    assert names == ["best (temperature 1.1)", "plain"]
