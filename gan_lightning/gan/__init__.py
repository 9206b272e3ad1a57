"""The GAN itself: the LightningModule and the parts its training step composes.

Entry point: :class:`~gan_lightning.gan.module.GANModule` (built by ``build.build_gan_module``).
Losses are functions of D's outputs, regularizers take gradients with respect to D's inputs,
augmentation and instance noise run inside "run D" on real and fake alike, tricks are small
pure functions of their settings, the averaged generator is a frozen copy lerped after each G
step (``ema``), ``guard`` decides what a NaN does, ``compatibility`` which settings fit
together, and ``clusters`` fits the k-means clusters a pair can be conditioned on, instead of
classes or within each (``model.clusters``). Only ``module`` knows them all; each part is
testable alone.
"""
