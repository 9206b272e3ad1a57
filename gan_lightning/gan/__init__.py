"""The GAN itself: the LightningModule and the parts its training step composes.

Losses are functions of D's outputs, regularizers take gradients with respect to D's inputs,
augmentation and instance noise run inside "run D" on real and fake alike, tricks are small
pure functions of their settings, and the averaged generator is a frozen copy lerped after each
G step. Only :mod:`~gan_lightning.gan.module` knows them all; each part is testable alone.
"""
