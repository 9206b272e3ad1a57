"""``model.clusters``: k-means clusters of the training images as labels, alone or within classes.

k-means against blobs whose answer is known, the generator's cluster choice against the shares
it is given, the module feeding D each image's cluster, and the clusters surviving a checkpoint.
No quality figure is asserted here (benchmarks/quality_curve.py measures those).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from gan_lightning.build import build_gan_module, build_trainer
from gan_lightning.config import validate
from gan_lightning.data.datamodule import WholeTensorDataModule
from gan_lightning.errors import ConfigError
from gan_lightning.gan import module as module_lib
from gan_lightning.gan.clusters import ImageClusters, kmeans
from gan_lightning.gan.module import GANModule
from gan_lightning.gan.tricks import Tricks
from gan_lightning.generation import generate, load_generator
from gan_lightning.networks.cgan import CGANDiscriminator, CGANGenerator
from gan_lightning.networks.latents import sample_latents
from gan_lightning.rejection import rejection_sample


def three_blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """60, 30 and 10 points around three far-apart centres in 5-D, and the centres."""
    centres = torch.tensor([[0.0] * 5, [10.0] * 5, [-10.0, 10.0, -10.0, 10.0, -10.0]])
    noise = torch.randn(100, 5, generator=torch.Generator().manual_seed(0)) * 0.1
    points = torch.cat(
        [centres[0] + noise[:60], centres[1] + noise[60:90], centres[2] + noise[90:]]
    )
    return points, centres


def test_kmeans_finds_the_blobs_and_leaves_the_global_random_stream_alone() -> None:
    points, centres = three_blobs()
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    centroids = kmeans(points, 3)
    torch.testing.assert_close(torch.rand(3), expected_next)
    nearest = torch.cdist(centres, centroids).min(dim=1).values
    assert nearest.max() < 0.1
    torch.testing.assert_close(kmeans(points, 3), centroids)  # the data alone decides
    with pytest.raises(ValueError, match="k=1"):
        kmeans(points, 1)


def test_image_clusters_give_each_clusters_share_and_the_nearest_centroid() -> None:
    points, centres = three_blobs()
    clusters = ImageClusters(3, 5)
    shares = clusters.fit(points.reshape(100, 1, 1, 5))
    assert sorted(shares.tolist()) == pytest.approx([0.1, 0.3, 0.6])
    labels = clusters.assign(centres)
    assert sorted(labels.tolist()) == [0, 1, 2]
    assert shares[labels[0]] == pytest.approx(0.6)  # the first blob held 60 of the 100 points


@pytest.mark.parametrize("prior", ["gaussian", "uniform"])
def test_the_generator_draws_clusters_in_the_shares_it_is_given(prior: str) -> None:
    generator = CGANGenerator(num_classes=0, clusters=3, latent_prior=prior).eval()
    generator.cluster_shares.copy_(torch.tensor([0.5, 0.2, 0.3]))
    z = sample_latents(generator, 30_000, rng=torch.Generator().manual_seed(0))
    drawn = torch.bincount(generator.cluster_of(z), minlength=3) / 30_000
    assert drawn.tolist() == pytest.approx([0.5, 0.2, 0.3], abs=0.01)
    # The choice is z's first entry alone: moving it from one end to the other changes the
    # cluster, and with it the image.
    low, high = z[:1].clone(), z[:1].clone()
    low[0, 0], high[0, 0] = -0.99, 0.99
    assert generator.cluster_of(low).item() == 0 and generator.cluster_of(high).item() == 2
    with torch.no_grad():
        assert not torch.allclose(generator(low), generator(high))


def test_clusters_pair_with_classes_only_through_the_projection_term() -> None:
    # Without clusters the state is what it always was: older checkpoints still load.
    assert "cluster_shares" not in CGANGenerator(num_classes=10).state_dict()
    with pytest.raises(ConfigError, match="num_classes=10 and conditioning='none'"):
        CGANDiscriminator(num_classes=10, conditioning="none", clusters=5)
    with pytest.raises(ConfigError, match="model.clusters=5 .* conditioning='projection'"):
        CGANDiscriminator(num_classes=0, conditioning="projection", clusters=5)
    disc = CGANDiscriminator(num_classes=0, clusters=5, batch_norm=False).eval()
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    with torch.no_grad():  # the projection term: the same images judged against other clusters
        assert not torch.allclose(disc(images, torch.zeros(4)), disc(images, torch.ones(4)))


def test_clusters_within_classes_are_fitted_and_assigned_class_by_class() -> None:
    points, _ = three_blobs()
    # Two classes over the same three blobs: class 0 holds blobs 0 and 1, class 1 blob 2 and
    # a copy of blob 0, so one blob belongs to both and only the label tells them apart.
    images = torch.cat([points, points[:60]])
    labels = torch.cat([torch.zeros(90), torch.ones(10), torch.ones(60)]).long()
    clusters = ImageClusters(2, 5, classes=2)
    shares = clusters.fit(images, labels)
    assert shares.shape == (4,)
    assert sorted(shares[:2].tolist()) == pytest.approx([1 / 3, 2 / 3])  # 30 and 60 of 90
    assert sorted(shares[2:].tolist()) == pytest.approx([1 / 7, 6 / 7])  # 10 and 60 of 70
    assigned = clusters.assign(images, labels)
    assert torch.equal(assigned // 2, labels)  # each image among its own class's clusters
    same_image = points[:1].expand(2, -1)
    both = clusters.assign(same_image, torch.tensor([0, 1]))
    assert both[0] // 2 == 0 and both[1] // 2 == 1
    with pytest.raises(ValueError, match="labels"):
        clusters.assign(images)
    with pytest.raises(ConfigError, match="model.clusters=2 .* class 1 has 1 training images"):
        ImageClusters(2, 5, classes=2).fit(points[:3], torch.tensor([0, 0, 1]))


def test_a_conditional_generator_draws_its_labels_clusters_in_their_shares() -> None:
    generator = CGANGenerator(num_classes=2, clusters=3).eval()
    generator.cluster_shares.copy_(torch.tensor([0.5, 0.2, 0.3, 0.1, 0.1, 0.8]))
    z = sample_latents(generator, 40_000, rng=torch.Generator().manual_seed(0))
    labels = torch.arange(40_000) % 2
    drawn = generator.cluster_of(z, labels)
    assert torch.equal(drawn // 3, labels)  # always one of its own label's clusters
    assert (torch.bincount(drawn, minlength=6) / 20_000).tolist() == pytest.approx(
        [0.5, 0.2, 0.3, 0.1, 0.1, 0.8], abs=0.015
    )
    with torch.no_grad():  # the same latent asks another digit's cluster for the other label
        assert not torch.allclose(generator(z[:1], labels[:1]), generator(z[:1], 1 - labels[:1]))
    with pytest.raises(ValueError, match="labels"):
        generator.cluster_of(z)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.clusters=1"], "model.clusters=1 is not allowed"),
        (["model.generator.clusters=4"], "draws from 4 clusters but the discriminator judges 0"),
    ],
)
def test_bad_cluster_settings_are_refused_by_key(compose_train, overrides, message) -> None:
    cfg = compose_train(["model=dcgan28", *overrides])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)  # a value out of range, before anything is built ...
        build_gan_module(cfg)  # ... and two networks that disagree, once they are


def brief_config(compose_train, experiment: str, clusters: int, batches: int = 3) -> DictConfig:
    """``experiment`` with ``clusters`` for ``batches`` batches of 8, in fp32, without metrics."""
    return compose_train(
        [
            f"experiment={experiment}",
            f"model.clusters={clusters}",
            "trainer.precision=32-true",
            "data.batch_size=8",
            "trainer.max_epochs=1",
            "trainer.max_time=null",
            f"trainer.limit_train_batches={batches}",
            "callbacks.generative_metrics=null",
            "callbacks.training_pictures=null",
        ]
    )


def fit_briefly(
    compose_train, experiment: str, clusters: int
) -> tuple[GANModule, WholeTensorDataModule]:
    """Three batches of ``brief_config``, saved into the test's run folder."""
    cfg = brief_config(compose_train, experiment, clusters)
    module = build_gan_module(cfg)
    datamodule = instantiate(cfg.data)
    build_trainer(cfg).fit(module, datamodule=datamodule)
    return module, datamodule


def test_training_fits_the_clusters_feeds_d_them_and_keeps_them_in_checkpoints(
    compose_train, tmp_path: Path
) -> None:
    module, datamodule = fit_briefly(compose_train, "best", clusters=4)

    reals = datamodule.real_images("train")
    expected_shares = torch.bincount(module.clusters.assign(reals), minlength=4) / len(reals)
    assert module.clusters.centroids.abs().sum() > 0
    torch.testing.assert_close(module.generator.cluster_shares, expected_shares)
    torch.testing.assert_close(module.g_ema.cluster_shares, expected_shares)
    # D judges a real batch against its images' clusters, and fakes against the ones drawn.
    _, real_labels = module._real_batch((reals[:8], torch.zeros(8, dtype=torch.long)))
    torch.testing.assert_close(real_labels, module.clusters.assign(reals[:8]))
    torch.manual_seed(0)
    z = sample_latents(module.generator, 8)
    torch.manual_seed(0)
    fake_labels = module._fakes(8).labels
    torch.testing.assert_close(fake_labels, module.generator.cluster_of(z))

    # A checkpoint alone samples with training's shares (sample, evaluate, rejection).
    generator, _ = load_generator(tmp_path / "run" / "checkpoints" / "last.ckpt", use_ema=True)
    torch.testing.assert_close(generator.cluster_shares, expected_shares)
    assert generator.num_classes == 0  # to everything that samples it, an unconditional G
    images, labels = rejection_sample(
        generator, module.discriminator.eval(), num_samples=6, seed=0, keep=0.5
    )
    assert images.shape == (6, 1, 28, 28) and labels is None


def test_conditional_training_fits_clusters_within_each_digit(
    compose_train, tmp_path: Path
) -> None:
    module, datamodule = fit_briefly(compose_train, "best_conditional", clusters=2)

    digits = datamodule.split_tensors("train")[1]
    reals = datamodule.real_images("train")
    assigned = module.clusters.assign(reals, digits)
    assert torch.equal(assigned // 2, digits.long())
    counts = torch.bincount(assigned, minlength=20).float().view(10, 2)
    torch.testing.assert_close(
        module.generator.cluster_shares, (counts / counts.sum(dim=1, keepdim=True)).flatten()
    )
    # D judges reals against their digit's nearest cluster, fakes against the one drawn.
    _, real_labels = module._real_batch((reals[:8], digits[:8]))
    torch.testing.assert_close(real_labels, assigned[:8])
    torch.manual_seed(0)
    asked = module.sample_labels(8)
    z = sample_latents(module.generator, 8)
    torch.manual_seed(0)
    fake_labels = module._fakes(8).labels
    torch.testing.assert_close(fake_labels, module.generator.cluster_of(z, asked))

    # A checkpoint samples the digit asked for, in the clusters' shares, with rejection too.
    generator, _ = load_generator(tmp_path / "run" / "checkpoints" / "last.ckpt", use_ema=True)
    torch.testing.assert_close(generator.cluster_shares, module.generator.cluster_shares)
    images, labels = rejection_sample(
        generator, module.discriminator.eval(), num_samples=6, seed=0, keep=0.5, digit=3
    )
    assert images.shape == (6, 1, 28, 28) and labels.tolist() == [3] * 6


def test_classifier_guidance_is_told_the_digit_not_the_cluster(compose_train, monkeypatch) -> None:
    cfg = brief_config(compose_train, "best_conditional", clusters=2, batches=2)
    module = build_gan_module(cfg)
    module.guide_classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    module.tricks = Tricks.from_config({"reuse_fakes": True, "classifier_guidance": {"alpha": 0.5}})
    targets: list[torch.Tensor] = []
    cross_entropy = module_lib.F.cross_entropy

    def recording_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        targets.append(target)
        return cross_entropy(logits, target)

    monkeypatch.setattr(module_lib.F, "cross_entropy", recording_cross_entropy)
    torch.manual_seed(0)
    asked = module.sample_labels(8)
    torch.manual_seed(0)
    fakes = module._fakes(8)
    assert torch.equal(fakes.labels // 2, asked)  # D's labels are clusters ...
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    # ... and the classifier is asked for digits, never for a cluster's index.
    assert targets and all(t.min() >= 0 and t.max() < 10 for t in targets)


class FavoursClusterZero(torch.nn.Module):
    """A discriminator that rates every image of cluster 0 above every other image."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(100.0))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return -self.scale * labels.float() + images.mean(dim=(1, 2, 3))


def test_rejection_selects_within_each_cluster_so_the_shares_stay() -> None:
    generator = CGANGenerator(num_classes=0, clusters=3).eval()
    generator.cluster_shares.copy_(torch.tensor([0.5, 0.3, 0.2]))
    images, labels = rejection_sample(
        generator, FavoursClusterZero(), num_samples=40, seed=0, keep=0.5
    )
    assert labels is None
    z = sample_latents(generator, 80, rng=torch.Generator().manual_seed(0))
    candidates, clusters = generate(generator, z), generator.cluster_of(z)
    picked = torch.tensor(
        [(candidates == image).flatten(1).all(dim=1).nonzero()[0].item() for image in images]
    )
    # Judged across clusters, all 40 would come from cluster 0; chosen within each, the
    # clusters keep the counts of a plain sample of 40 (the first 40 candidates).
    assert torch.equal(
        torch.bincount(clusters[picked], minlength=3), torch.bincount(clusters[:40], minlength=3)
    )
    assert (torch.bincount(clusters[picked], minlength=3) > 0).all()
