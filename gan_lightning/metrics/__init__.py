"""GAN metrics with our own classifier as the judge: nothing is downloaded, no Inception.

:class:`GenerativeMetricSuite` bundles torchmetrics' FID, KID and IS (on the classifier's
features and logits) with improved precision/recall, class coverage and conditional accuracy.
"""
