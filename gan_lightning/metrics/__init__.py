"""GAN metrics with our own classifier as the judge: nothing is downloaded, no Inception.

Entry point: :class:`~gan_lightning.metrics.suite.GenerativeMetricSuite`, which bundles
torchmetrics' FID, KID and IS (on the classifier's features and logits) with improved
precision/recall, class coverage, conditional accuracy and memorization; the metrics callback
and ``evaluate`` both score through it, with the real features cached (``cache``).
"""
