"""Shared fixtures: a tiny synthetic MNIST for fast tests, and the real one when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gan_lightning.data import DataError, find_split, write_idx


@pytest.fixture(scope="session")
def tiny_mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root in torchvision's layout (<root>/MNIST/raw/) with 256 train and 128 test images."""
    root = tmp_path_factory.mktemp("tiny_mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 256), ("t10k", 128)):
        # Class-dependent patterns: a bar whose row encodes the label, shifted a little per image.
        labels = torch.arange(count, dtype=torch.uint8) % 10
        images = torch.zeros(count, 28, 28, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            row, shift = 4 + 2 * label, i // 10 % 3
            images[i, row : row + 2, 6 + shift : 20 + shift] = 255
            images[i, 8:20, 13] = 128
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def shared_data_root() -> Path:
    """The real (partial) MNIST of ../shared/data or GAN_DATA_DIR; skips the test when absent."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    root = Path(os.environ.get("GAN_DATA_DIR", default))
    try:
        find_split(root, ("MNIST",), "train")
    except DataError:
        pytest.skip(f"no real MNIST under {root}")
    return root
