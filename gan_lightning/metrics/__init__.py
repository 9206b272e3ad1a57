"""GAN metrics with our own classifier as the judge: nothing is downloaded, no Inception.

:class:`GenerativeMetricSuite` bundles torchmetrics' FID, KID and IS (on the classifier's
features and logits) with improved precision/recall, class coverage and conditional accuracy.
"""

from gan_lightning.metrics.coverage import ClassCoverage
from gan_lightning.metrics.features import ClassifierFeatures, ClassifierLogits
from gan_lightning.metrics.precision_recall import PrecisionRecall
from gan_lightning.metrics.suite import (
    LOGGED_METRICS,
    GenerativeMetricSuite,
    add_generated,
    add_real_as_fake,
    build_suite,
)

__all__ = [
    "LOGGED_METRICS",
    "ClassCoverage",
    "ClassifierFeatures",
    "ClassifierLogits",
    "GenerativeMetricSuite",
    "PrecisionRecall",
    "add_generated",
    "add_real_as_fake",
    "build_suite",
]
