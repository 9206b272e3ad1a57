"""Metric correctness on cases whose answers are known, and the suite's bookkeeping."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gan_lightning.callbacks import metrics as metrics_callback
from gan_lightning.callbacks.metrics import GenerativeMetrics
from gan_lightning.data.datamodule import MNISTDataModule
from gan_lightning.errors import MissingClassifierError
from gan_lightning.metrics.cache import cache_path
from gan_lightning.metrics.coverage import ClassCoverage
from gan_lightning.metrics.features import ClassifierFeatures, ClassifierLogits
from gan_lightning.metrics.precision_recall import PrecisionRecall
from gan_lightning.metrics.suite import (
    GenerativeMetricSuite,
    add_generated,
    add_real_as_fake,
    build_suite,
)
from gan_lightning.networks.digit_cnn import MNISTClassifier
from tests.metrics_helpers import OneHotJudge, make_classifier_file, one_hot_features

LOG_10 = math.log(10)


@pytest.fixture(scope="module")
def classifier() -> MNISTClassifier:
    torch.manual_seed(0)
    return MNISTClassifier().eval()


@pytest.fixture(scope="module")
def digits(tiny_mnist_root: Path) -> MNISTDataModule:
    datamodule = MNISTDataModule(str(tiny_mnist_root), batch_size=16, download=False)
    datamodule.setup()
    return datamodule


def small_suite(judge: nn.Module) -> GenerativeMetricSuite:
    return GenerativeMetricSuite(judge, kid_subsets=5, kid_subset_size=50)


def balanced_labels(count: int) -> torch.Tensor:
    return torch.arange(count) % 10


# --------------------------------------------------------------------- FID, KID
def test_fid_and_kid_of_a_set_against_itself_are_zero_and_grow_with_a_shift(
    classifier: MNISTClassifier, digits: MNISTDataModule
) -> None:
    images = digits.real_images("test")
    suite = small_suite(classifier)
    suite.update_real(images)
    suite.update_fake(images)
    same = suite.compute()
    assert same["fid"] == pytest.approx(0, abs=1e-3)

    scores = []
    for brightness in (0.25, 0.5):  # brighter copies of the same digits
        suite.reset_fake()
        suite.update_fake((images + brightness).clamp(-1, 1))
        scores.append(suite.compute())
    assert 1e-3 < scores[0]["fid"] < scores[1]["fid"]
    assert abs(same["kid"]) < scores[0]["kid"] < scores[1]["kid"]


def test_features_pass_through_equals_images(
    classifier: MNISTClassifier, digits: MNISTDataModule
) -> None:
    """Cached features fed to update_real give the statistics the images give."""
    images = digits.real_images("test")
    from_images, from_features = small_suite(classifier), small_suite(classifier)
    from_images.update_real(images)
    with torch.no_grad():
        from_features.update_real(classifier.features(images))
    for suite in (from_images, from_features):
        suite.update_fake(digits.real_images("train"))
    assert from_images.compute()["fid"] == pytest.approx(from_features.compute()["fid"], rel=1e-6)


# --------------------------------------------------------------------- IS
def test_inception_score_of_one_class_is_one_and_of_balanced_perfect_set_near_ten() -> None:
    suite = small_suite(OneHotJudge())
    suite.update_real(one_hot_features(balanced_labels(200)))
    suite.update_fake(one_hot_features(torch.full((200,), 3)))
    assert suite.compute()["is"] == pytest.approx(1.0, abs=1e-3)

    suite.reset_fake()
    suite.update_fake(one_hot_features(balanced_labels(5000)))
    assert 9.8 < suite.compute()["is"] <= 10.0


# --------------------------------------------------------------------- precision / recall
def test_precision_recall_of_identical_sets_is_one() -> None:
    features = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    metric = PrecisionRecall(k=3)
    metric.update(features, real=True)
    metric.update(features.clone(), real=False)
    result = metric.compute()
    assert result["precision"] == pytest.approx(1.0)
    assert result["recall"] == pytest.approx(1.0)


def test_dropped_mode_lowers_recall_not_precision() -> None:
    """Real data in two far-apart clusters, G samples only one: precision 1, recall 1/2."""
    rng = torch.Generator().manual_seed(0)
    cluster_a = torch.randn(200, 8, generator=rng)
    cluster_b = torch.randn(200, 8, generator=rng) + 100
    metric = PrecisionRecall(k=3)
    metric.update(torch.cat([cluster_a, cluster_b])[torch.randperm(400, generator=rng)], real=True)
    metric.update(cluster_a.repeat(2, 1), real=False)  # as many samples, all in cluster a
    result = metric.compute()
    assert result["precision"] == 1.0
    assert result["recall"] == 0.5


def test_far_away_samples_have_zero_precision_and_recall() -> None:
    rng = torch.Generator().manual_seed(0)
    metric = PrecisionRecall(k=3)
    metric.update(torch.randn(100, 8, generator=rng), real=True)
    metric.update(torch.randn(100, 8, generator=rng) + 100, real=False)
    result = metric.compute()
    assert float(result["precision"]) == float(result["recall"]) == 0.0


def test_precision_recall_keeps_real_features_when_asked() -> None:
    metric = PrecisionRecall(k=1, reset_real_features=False)
    metric.update(torch.randn(10, 4), real=True)
    metric.update(torch.randn(10, 4), real=False)
    metric.reset()
    assert len(metric.real_features) == 1 and len(metric.fake_features) == 0


def test_precision_recall_needs_more_samples_than_k() -> None:
    metric = PrecisionRecall(k=3)
    metric.update(torch.randn(3, 4), real=True)
    metric.update(torch.randn(5, 4), real=False)
    with pytest.raises(ValueError, match="k=3 needs more than 3 .* got 3 real and 5 fake"):
        metric.compute()


# --------------------------------------------------------------------- coverage, accuracy
def test_coverage_kl_of_balanced_set_is_zero_and_of_collapsed_set_is_log_ten() -> None:
    coverage = ClassCoverage(10)
    coverage.update(one_hot_features(balanced_labels(500)))
    balanced = coverage.compute()
    assert balanced["coverage_kl"] == pytest.approx(0.0, abs=1e-9)
    assert balanced["min_class_fraction"] == pytest.approx(0.1)

    coverage.reset()
    coverage.update(one_hot_features(torch.full((500,), 7)))
    collapsed = coverage.compute()
    assert collapsed["coverage_kl"] == pytest.approx(LOG_10)
    assert collapsed["min_class_fraction"] == 0
    assert collapsed["class_fractions"][7] == 1


def test_conditional_accuracy_overall_and_per_digit() -> None:
    """G asked for balanced digits; it draws digit 9 whenever asked for 8."""
    requested = balanced_labels(200)
    drawn = torch.where(requested == 8, 9, requested)
    suite = small_suite(OneHotJudge())
    suite.update_real(one_hot_features(requested))
    suite.update_fake(one_hot_features(drawn), requested)
    values = suite.compute()
    assert values["cond_acc"] == pytest.approx(0.9)
    per_digit = values["cond_acc_per_class"]
    assert per_digit[8] == 0 and all(per_digit[d] == 1 for d in range(10) if d != 8)
    assert values["class_fractions"][9] == pytest.approx(0.2)


def test_unconditional_samples_report_no_conditional_accuracy() -> None:
    suite = small_suite(OneHotJudge())
    suite.update_real(one_hot_features(balanced_labels(100)))
    suite.update_fake(one_hot_features(balanced_labels(100)))
    assert "cond_acc" not in suite.compute()


# --------------------------------------------------------------------- the suite's bookkeeping
def test_reset_fake_keeps_real_statistics() -> None:
    suite = small_suite(OneHotJudge())
    suite.update_real(one_hot_features(balanced_labels(100)))
    suite.update_fake(one_hot_features(balanced_labels(60)))
    suite.compute()
    suite.reset_fake()
    assert (suite.num_real, suite.num_fake) == (100, 0)
    suite.update_fake(one_hot_features(balanced_labels(40)))
    assert suite.compute()["num_fake"] == 40


def test_compute_is_seeded_and_leaves_the_global_rng_alone() -> None:
    rng = torch.Generator().manual_seed(1)
    suite = GenerativeMetricSuite(OneHotJudge(), kid_subsets=3, kid_subset_size=30)
    suite.update_real(torch.rand(100, 10, generator=rng))
    suite.update_fake(torch.rand(100, 10, generator=rng))
    state = torch.get_rng_state()
    first = suite.compute()
    assert torch.equal(torch.get_rng_state(), state)
    suite.update_fake(torch.zeros(0, 10))  # invalidates torchmetrics' cached results
    assert suite.compute() == first


def test_feature_views_stay_in_eval_mode_and_check_shapes(classifier: MNISTClassifier) -> None:
    features = ClassifierFeatures(classifier)
    assert features.num_features == 128
    holder = nn.ModuleList([features, ClassifierLogits(classifier)]).train()
    assert not any(m.training for m in holder.modules() if m is not holder)
    with torch.no_grad():
        assert features(torch.zeros(2, 1, 32, 32)).shape == (2, 128)
        assert ClassifierLogits(classifier)(torch.zeros(2, 128)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"features \[B, 128\].*\[2, 7\]"):
        features(torch.zeros(2, 7))


# --------------------------------------------------------------------- generation and cache
class _CountingGenerator(nn.Module):
    """A conditional 'generator' that draws the one-hot feature of the digit it is asked for."""

    latent_dim = 4
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.noise: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        self.noise.append(z)
        return one_hot_features(labels) * self.scale


def test_add_generated_asks_for_balanced_digits_with_its_own_seeded_noise() -> None:
    suite = small_suite(OneHotJudge())
    suite.update_real(one_hot_features(balanced_labels(100)))
    generator = _CountingGenerator()
    state = torch.get_rng_state()
    add_generated(suite, generator, 95, batch_size=40, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    values = suite.compute()
    assert values["num_fake"] == 95 and values["cond_acc"] == 1.0
    assert [len(z) for z in generator.noise] == [40, 40, 15]
    first_noise = torch.cat(generator.noise)

    generator.noise.clear()
    add_generated(suite, generator, 95, batch_size=95, seed=7)
    assert torch.equal(torch.cat(generator.noise), first_noise)


def test_build_suite_caches_real_features_per_classifier_file(
    tmp_path: Path, digits: MNISTDataModule
) -> None:
    weights = make_classifier_file(tmp_path / "clf.pt", seed=0)
    suite = build_suite(weights, digits, batch_size=50)
    assert suite.num_real == digits.num_test
    cached = cache_path(weights, digits.split_tensors("test")[0], dataset="MNIST", split="test")
    assert cached.is_file() and cached.parent == tmp_path / "cache"
    assert build_suite(weights, digits).fid.real_features_sum.allclose(suite.fid.real_features_sum)

    make_classifier_file(weights, seed=1)  # retrained: another key, never the stale features
    assert cache_path(weights, digits.split_tensors("test")[0], dataset="MNIST", split="test") != (
        cached
    )


def test_real_floor_of_identical_splits_is_perfect(digits: MNISTDataModule) -> None:
    """The floor machinery: the test split scored against itself gives FID 0, P = R = 1."""
    torch.manual_seed(0)
    suite = small_suite(MNISTClassifier())
    suite.update_real(digits.real_images("test"))
    add_real_as_fake(suite, digits, "test", batch_size=50)
    values = suite.compute()
    assert values["fid"] == pytest.approx(0, abs=1e-3)
    assert values["precision"] == values["recall"] == 1.0
    assert values["num_fake"] == digits.num_test
    assert 0 <= values["cond_acc"] <= 1  # true labels were passed along


# --------------------------------------------------------------------- the training callback
def _trainer(datamodule: object) -> SimpleNamespace:
    """What GenerativeMetrics.setup reads from a trainer."""
    return SimpleNamespace(
        datamodule=datamodule,
        is_global_zero=True,
        strategy=SimpleNamespace(barrier=lambda name=None: None),
    )


def test_missing_classifier_warns_with_the_command_and_skips_metrics(
    tmp_path: Path, digits: MNISTDataModule
) -> None:
    callback = GenerativeMetrics(str(tmp_path / "none.pt"))
    with pytest.warns(UserWarning, match=r"no classifier at .*none\.pt.*gan_lightning\.train_cl"):
        callback.setup(_trainer(digits), None, "fit")
    callback.on_fit_start(_trainer(digits), None)
    assert callback.suite is None


def test_missing_classifier_can_be_an_error(tmp_path: Path, digits: MNISTDataModule) -> None:
    callback = GenerativeMetrics(None, missing_classifier="error")
    with pytest.raises(
        MissingClassifierError, match="classifier_ckpt is not set.*train_classifier"
    ):
        callback.setup(_trainer(digits), None, "fit")


def test_missing_classifier_can_be_trained_first(
    tmp_path: Path, digits: MNISTDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_launch(path: Path, root: str, dataset: str) -> None:
        calls.append((path, root, dataset))
        make_classifier_file(path)

    monkeypatch.setattr(metrics_callback, "launch_training", fake_launch)
    weights = tmp_path / "clf.pt"
    callback = GenerativeMetrics(str(weights), missing_classifier="train")
    callback.setup(_trainer(digits), None, "fit")
    assert calls == [(weights, digits.root, "MNIST")] and weights.is_file()
    assert callback.enabled


def test_metrics_need_the_runs_datamodule(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs the run's data module"):
        GenerativeMetrics(str(tmp_path / "x.pt")).setup(_trainer(None), None, "fit")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_n_epochs": 0}, "metrics.every_n_epochs=0"),
        ({"num_samples": 5}, "metrics.num_samples=5"),
        ({"max_time_share": 0}, r"metrics.max_time_share=0 is not allowed; .* \(0, 1\]"),
        ({"max_time_share": 1.5}, r"metrics.max_time_share=1.5 is not allowed; .* \(0, 1\]"),
        (
            {"missing_classifier": "ignore"},
            "metrics.missing_classifier='ignore'.*warn, error, train",
        ),
        ({"min_class_fraction": 1.5}, r"metrics.min_class_fraction=1.5 .* \[0, 1\]"),
        ({"min_class_fraction": float("nan")}, "metrics.min_class_fraction=nan is not allowed"),
        ({"num_samples": 100.0}, "metrics.num_samples=100.0 is not allowed; it must be an int"),
        ({"seed": "0"}, "metrics.seed='0' is not allowed; it must be an integer"),
    ],
)
def test_metrics_callback_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenerativeMetrics("x.pt", **kwargs)


def test_mode_collapse_is_warned_at_each_evaluation_that_finds_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fractions = iter([0.09, 0.004])  # healthy, then the rarest class nearly vanishes
    suite = SimpleNamespace(
        reset_fake=lambda: None, compute=lambda: {"min_class_fraction": next(fractions)}
    )
    monkeypatch.setattr(metrics_callback, "add_generated", lambda *args, **kwargs: None)
    module = SimpleNamespace(sampling_generator=lambda: None, log=lambda *args, **kwargs: None)
    callback = GenerativeMetrics("x.pt", min_class_fraction=0.02)
    callback.suite = suite
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        for epoch in range(2):
            trainer = SimpleNamespace(current_epoch=epoch, max_epochs=2, should_stop=False)
            callback.on_train_epoch_end(trainer, module)
    warnings = [r.getMessage() for r in caplog.records if "mode collapse" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "at epoch 1: the rarest class is 0.40% of the generated samples" in warnings[0]
    assert "metrics.min_class_fraction=0.02" in warnings[0]


@pytest.mark.parametrize("max_time_share", [1e-9, None])
def test_evaluations_during_training_stay_within_their_time_share(
    compose_train, tmp_path: Path, max_time_share: float | None
) -> None:
    """A tiny share: the first epoch evaluates (nothing spent yet), then only the final one."""
    from hydra.utils import instantiate

    from gan_lightning.build import build_gan_module, build_trainer
    from gan_lightning.pictures import read_scalars

    classifier = make_classifier_file(tmp_path / "MNIST_classifier.pt")
    cfg = compose_train(
        [
            "model=mlp",
            "data.batch_size=16",
            "trainer.max_epochs=4",
            f"metrics.classifier_ckpt={classifier}",
            "metrics.num_samples=20",
            "metrics.final_num_samples=40",
            f"metrics.max_time_share={'null' if max_time_share is None else max_time_share}",
            "callbacks.training_pictures=null",
        ]
    )
    build_trainer(cfg).fit(build_gan_module(cfg), datamodule=instantiate(cfg.data))
    scalars = read_scalars(tmp_path / "run" / "tensorboard")
    evaluated_epochs = [0, 3] if max_time_share else [0, 1, 2, 3]
    assert len(scalars["metrics/fid"][0]) == len(evaluated_epochs)
    shares = scalars["metrics/time_share"][1]  # after every epoch: the share so far
    assert len(shares) == 4 and all(0 < s < 1 for s in shares)
    if max_time_share:  # no evaluation after epoch 0 until the final one: the share falls
        assert shares[0] > shares[1] > shares[2]


# ---------------------------------------------------------------------------- memorization
def _memorization_sets():
    """Train and test images of one smooth family (blobs at random places), and features."""
    rng = torch.Generator().manual_seed(0)

    def blobs(count: int) -> torch.Tensor:
        grid = torch.arange(28.0)
        centres = torch.rand(count, 2, generator=rng) * 16 + 6
        rows = (grid[None, :] - centres[:, :1]).square()
        cols = (grid[None, :] - centres[:, 1:]).square()
        images = torch.exp(-(rows[:, :, None] + cols[:, None, :]) / 18.0)
        return (images * 2 - 1)[:, None]

    return blobs(600), blobs(300)


class _PixelFeatures(nn.Module):
    """A stand-in feature net: 16 average-pooled pixels."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)


def _memorization(train: torch.Tensor, test: torch.Tensor):
    from gan_lightning.metrics.memorization import Memorization, flat_pixels

    features = _PixelFeatures()
    metric = Memorization(features)
    metric.set_reference(flat_pixels(train), features(train), flat_pixels(test), features(test))
    return metric


def test_memorization_flags_planted_training_copies_and_not_novel_images() -> None:
    train, test = _memorization_sets()
    copies = _memorization(train, test)
    copies.update(train[:200])
    flagged = copies.compute()
    novel = _memorization(train, test)
    novel.update(test[:200])
    clean = novel.compute()
    for space in ("pixel", "feature"):
        assert flagged[f"copy_share_{space}"] == 1.0
        assert flagged[f"nn_ratio_{space}"] < 1e-3
        assert clean[f"copy_share_{space}"] <= 0.05
        assert clean[f"nn_ratio_{space}"] == pytest.approx(1.0, abs=0.25)


def test_memorization_sees_a_half_copied_sample_set() -> None:
    train, test = _memorization_sets()
    metric = _memorization(train, test)
    metric.update(torch.cat([train[:100], test[:100]]))
    values = metric.compute()
    assert 0.45 <= values["copy_share_pixel"] <= 0.55


def test_suite_flags_training_images_fed_as_samples(
    tmp_path: Path, digits: MNISTDataModule
) -> None:
    suite = build_suite(make_classifier_file(tmp_path / "clf.pt", seed=0), digits, batch_size=50)
    add_real_as_fake(suite, digits, "train", batch_size=50)
    copied = suite.compute()
    # Pixels only: the tiny test split repeats training images, so its feature distances are
    # float noise as well (the feature space is tested on novel data above).
    assert copied["copy_share_pixel"] == 1.0 and copied["nn_ratio_pixel"] == 0.0
    assert {"copy_share_feature", "nn_ratio_feature"} <= set(copied)
    suite.reset_fake()  # the training reference survives, like the real statistics
    add_real_as_fake(suite, digits, "train", batch_size=50)
    assert suite.compute()["copy_share_pixel"] == 1.0
