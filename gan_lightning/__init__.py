"""gan-lightning: train, compare and judge GANs on MNIST-like data with Lightning and Hydra."""

__version__ = "0.1.0"
