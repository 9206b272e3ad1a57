"""Every generative metric on one classifier, fed once per image; shared by training and evaluate.

The classifier runs once per image: its features go to FID, KID and precision/recall, its
logits (the head applied to those features) to IS, class coverage and conditional accuracy.
Real statistics come from the test split, through the on-disk cache, and survive ``reset_fake``
(torchmetrics' ``reset_real_features=False``), so an evaluation during training costs only the
generated samples.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

# Imported from their modules: torchmetrics.image exports them only when torch-fidelity (the
# Inception weights we never use) is installed.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from gan_lightning.classifier import load_classifier
from gan_lightning.data.datamodule import WholeTensorDataModule, to_unit_range
from gan_lightning.errors import CheckpointError
from gan_lightning.metrics.cache import real_features
from gan_lightning.metrics.coverage import ClassCoverage
from gan_lightning.metrics.features import ClassifierFeatures, ClassifierLogits
from gan_lightning.metrics.memorization import Memorization, flat_pixels
from gan_lightning.metrics.precision_recall import PrecisionRecall
from gan_lightning.networks.latents import sample_latents

#: Scalars worth a curve: logged as ``metrics/<name>`` during training (cond_acc only for
#: conditional generators). Lower is better for fid, kid and coverage_kl; higher for the rest.
LOGGED_METRICS = (
    "fid",
    "kid",
    "is",
    "precision",
    "recall",
    "coverage_kl",
    "min_class_fraction",
    "cond_acc",
    "copy_share_pixel",
    "copy_share_feature",
    "nn_ratio_pixel",
    "nn_ratio_feature",
)
#: Memorization keys: meaningless for real images scored against their own training set.
MEMORIZATION_METRICS = LOGGED_METRICS[-4:]


class GenerativeMetricSuite(nn.Module):
    """FID, KID, IS, precision/recall, class coverage and conditional accuracy in one object.

    Args:
        classifier: frozen classifier (``load_classifier``) with ``features``/``head``.
        kid_subsets / kid_subset_size: KID averages the MMD over this many random subsets.
            The subset size shrinks to the smaller sample count when fewer samples are given.
        nearest_k: neighbourhood size of precision/recall (the paper's 3).
        is_splits: IS is averaged over this many splits (the usual 10).
        seed: seeds the random subsets and splits of KID and IS, in a forked RNG, so a value
            is a function of the samples alone and the training RNG is never consumed.
    """

    def __init__(
        self,
        classifier: nn.Module,
        *,
        kid_subsets: int = 20,
        kid_subset_size: int = 1000,
        nearest_k: int = 3,
        is_splits: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.features = ClassifierFeatures(classifier)
        logits = ClassifierLogits(classifier)
        num_classes = classifier.num_classes
        self.kid_subset_size = kid_subset_size
        self.seed = seed
        # Computed where they are fed (one process): no cross-process sync at compute.
        local = {"sync_on_compute": False}
        with warnings.catch_warnings():
            # KID and IS warn that they keep features in memory: 10,000 x 128 floats is 5 MB.
            warnings.filterwarnings("ignore", message=".*will save all extracted features")
            self.fid = FrechetInceptionDistance(
                feature=self.features, reset_real_features=False, **local
            )
            self.kid = KernelInceptionDistance(
                feature=self.features,
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                reset_real_features=False,
                **local,
            )
            self.inception_score = InceptionScore(feature=logits, splits=is_splits, **local)
        self.precision_recall = PrecisionRecall(
            feature=self.features, k=nearest_k, reset_real_features=False, **local
        )
        self.coverage = ClassCoverage(num_classes, **local)
        self.cond_acc = MulticlassAccuracy(num_classes, average="micro", **local)
        self.cond_acc_per_class = MulticlassAccuracy(num_classes, average="none", **local)
        self.memorization = Memorization(self.features, **local)
        self.logits = logits

    def _metrics(self) -> list[Metric]:
        return [m for m in self.children() if isinstance(m, Metric)]

    @property
    def device(self) -> torch.device:
        return next(self.features.parameters()).device

    @property
    def num_real(self) -> int:
        return int(self.fid.real_features_num_samples)

    @property
    def num_fake(self) -> int:
        return int(self.fid.fake_features_num_samples)

    @torch.no_grad()
    def update_real(self, inputs: Tensor) -> None:
        """Add real images, or their features (e.g. from the cache)."""
        features = self.features(inputs)
        for metric in (self.fid, self.kid, self.precision_recall):
            metric.update(features, real=True)

    @torch.no_grad()
    def update_fake(self, images: Tensor, labels: Tensor | None = None) -> None:
        """Add generated images; ``labels`` are the digits a conditional G was asked for."""
        features = self.features(images)
        for metric in (self.fid, self.kid, self.precision_recall):
            metric.update(features, real=False)
        self.inception_score.update(features)
        if self.memorization.has_reference:
            self.memorization.update(images, features)
        logits = self.logits(features)
        self.coverage.update(logits)
        if labels is not None:
            self.cond_acc.update(logits, labels)
            self.cond_acc_per_class.update(logits, labels)

    def reset_fake(self) -> None:
        """Forget generated samples; the real statistics stay."""
        for metric in self._metrics():
            metric.reset()

    def compute(self) -> dict[str, float | list[float]]:
        """Every metric as plain numbers (JSON-ready); per-class values as lists."""
        self.kid.subset_size = min(self.kid_subset_size, self.num_real, self.num_fake)
        # KID's kernel (gamma x.y + 1)^3 with torchmetrics' gamma = 1/dim suits Inception
        # features. Ours are ~10x larger, so gamma x.y reaches 10-40 and the cubed kernel is
        # heavy-tailed: on real data KID's spread over subsets exceeded its mean. Scaling by the
        # real features' mean squared norm keeps gamma x.y of order 1; it is fixed per
        # classifier and test set, so KIDs stay comparable across runs.
        real = dim_zero_cat(self.kid.real_features)
        self.kid.gamma = float(1.0 / real.pow(2).sum(dim=1).mean())
        with torch.random.fork_rng(devices=[]):
            # KID and IS draw their subsets/splits with torch.randperm on the CPU generator.
            torch.default_generator.manual_seed(self.seed)
            kid, kid_std = self.kid.compute()
            inception, inception_std = self.inception_score.compute()
        coverage = self.coverage.compute()
        values: dict[str, float | list[float]] = {
            "num_real": self.num_real,
            "num_fake": self.num_fake,
            "fid": float(self.fid.compute()),
            "kid": float(kid),
            "kid_std": float(kid_std),
            "is": float(inception),
            "is_std": float(inception_std),
            **{k: float(v) for k, v in self.precision_recall.compute().items()},
            "coverage_kl": float(coverage["coverage_kl"]),
            "min_class_fraction": float(coverage["min_class_fraction"]),
            "class_fractions": coverage["class_fractions"].tolist(),
        }
        if self.memorization.update_called:
            values.update({k: float(v) for k, v in self.memorization.compute().items()})
        if self.cond_acc.update_called:
            values["cond_acc"] = float(self.cond_acc.compute())
            values["cond_acc_per_class"] = self.cond_acc_per_class.compute().tolist()
        return values


def check_judge(
    classifier: nn.Module, classifier_ckpt: str | Path, datamodule: WholeTensorDataModule
) -> None:
    """Refuse a classifier that cannot judge this data: other channels, or other classes
    (its class balance and conditional accuracy would count classes the data does not have).
    Data without labels has no classes to match: any classifier of its channels gives FID."""
    channels = getattr(classifier, "channels", 1)
    classes = classifier.num_classes
    if channels == datamodule.channels and (
        not datamodule.labeled or classes == datamodule.num_classes
    ):
        return
    raise CheckpointError(
        f"Classifier {classifier_ckpt} takes {channels}-channel images of {classes} classes, "
        f"but {datamodule.source} holds {datamodule.channels}-channel images of "
        f"{datamodule.num_classes} classes. Train one on this data (`python -m "
        f"gan_lightning.train_classifier` with the same data settings, data.dataset="
        f"{datamodule.dataset} naming its file), or pass the weights file of one."
    )


def build_suite(
    classifier_ckpt: str | Path,
    datamodule: WholeTensorDataModule,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    **suite_options: int,
) -> GenerativeMetricSuite:
    """A suite on the classifier at ``classifier_ckpt``, holding the real test-split statistics.

    ``datamodule`` must be set up; raises ``MissingClassifierError`` (naming the command that
    trains one) when there is no classifier file.
    """
    classifier = load_classifier(classifier_ckpt)
    check_judge(classifier, classifier_ckpt, datamodule)
    suite = GenerativeMetricSuite(classifier, **suite_options).to(device)
    pixels, features = {}, {}
    for split in ("train", "test"):
        images = datamodule.split_tensors(split)[0]
        pixels[split] = flat_pixels(to_unit_range(images.to(device)))
        features[split] = real_features(
            suite.features,
            classifier_ckpt,
            images,
            dataset=datamodule.dataset,
            split=split,
            batch_size=batch_size,
        )
    suite.update_real(features["test"])
    suite.memorization.set_reference(
        pixels["train"], features["train"], pixels["test"], features["test"]
    )
    return suite


@torch.no_grad()
def add_generated(
    suite: GenerativeMetricSuite,
    generator: nn.Module,
    num_samples: int,
    *,
    batch_size: int,
    seed: int,
) -> None:
    """Feed ``num_samples`` samples of ``generator`` to the suite, from seeded noise.

    The noise comes from a dedicated ``torch.Generator``: the same ``seed`` gives the same
    latent vectors at every evaluation (comparable curves), and the global RNG that training
    (and exact resume) depends on is never touched. Conditional generators are asked for every
    class in turn, so the requested labels are balanced.
    """
    device = next(generator.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    num_classes = generator.num_classes
    for start in range(0, num_samples, batch_size):
        count = min(batch_size, num_samples - start)
        z = sample_latents(generator, count, rng=rng, device=device)
        labels = None
        if num_classes:
            labels = torch.arange(start, start + count, device=device) % num_classes
        suite.update_fake(generator(z, labels), labels)


@torch.no_grad()
def add_real_as_fake(
    suite: GenerativeMetricSuite, datamodule: WholeTensorDataModule, split: str, *, batch_size: int
) -> None:
    """Feed a real split as if generated, with its true labels: the real-data floor.

    The training split scored against the test split is what a generator that reproduced its
    training data exactly would get, so no GAN should be expected to beat these numbers.
    """
    images, labels = datamodule.split_tensors(split)
    device = suite.device
    for image_batch, label_batch in zip(
        images.split(batch_size), labels.split(batch_size), strict=True
    ):
        # Without labels there is no class to check the classifier's reading against.
        targets = label_batch.to(device) if datamodule.labeled else None
        suite.update_fake(to_unit_range(image_batch.to(device)), targets)
