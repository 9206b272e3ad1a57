"""Data layer: IDX file I/O and the MNIST-family Lightning data module."""
