"""Shared fixtures: a tiny synthetic MNIST for fast tests, and the real one when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from gan_lightning.data.idx import find_split, write_idx
from gan_lightning.errors import DataError
from gan_lightning.sweeps.jobs import available_cores


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto``), share the cores among the workers.

    torch's default, a thread per core in every process, would oversubscribe the machine once
    per worker: with two workers on two cores the compute-bound tests ran 3x slower than alone.
    ``OMP_NUM_THREADS`` carries the share to the CLI runs and notebook kernels tests start.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(available_cores() // workers, 1)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need a CUDA device: skip them, with the reason, where there is none."""
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(no_gpu)


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


CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def compose_train(tmp_path: Path, tiny_mnist_root: Path):
    """Compose ``conf/train.yaml`` as the CLI would, on the tiny dataset, into ``tmp_path``.

    Returns a function ``(overrides) -> DictConfig``; ``${hydra:...}`` interpolations resolve
    because the Hydra config is registered, exactly as inside ``@hydra.main``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    def _compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    f"data.root={tiny_mnist_root}",
                    f"hydra.run.dir={tmp_path / 'run'}",
                    "trainer=debug",
                    *overrides,
                ],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
            cfg.hydra.runtime.cwd = str(tmp_path)
        HydraConfig.instance().set_config(cfg)
        return cfg

    return _compose
