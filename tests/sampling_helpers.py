"""Builders for the sampling, picture and TensorBoard tests: configs, checkpoints, a classifier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from gan_lightning.build import build_gan_module
from gan_lightning.classifier import save_classifier
from gan_lightning.networks.digit_cnn import MNISTClassifier

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(REPO / "conf")


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(name, overrides=overrides)


def train_config(folder: Path, data_root: Path, overrides: list[str]) -> DictConfig:
    """The ``train`` config of a tiny CPU run whose paths all live in ``folder``."""
    return compose_config(
        "train",
        [
            f"data.root={data_root}",
            "data.batch_size=16",
            f"paths.root_dir={folder}",
            f"paths.output_dir={folder}/run",
            *overrides,
        ],
    )


def make_checkpoint(folder: Path, data_root: Path, overrides: list[str]) -> Path:
    """A real Lightning checkpoint after two training batches (no callbacks, no logger)."""
    cfg = train_config(folder, data_root, overrides)
    pl.seed_everything(0)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(build_gan_module(cfg), datamodule=instantiate(cfg.data))
    path = folder / "gan.ckpt"
    trainer.save_checkpoint(path)
    return path


def make_classifier_file(path: Path, seed: int = 0) -> Path:
    """An untrained classifier in the weights-file format: a judge whose answers are fixed."""
    torch.manual_seed(seed)
    config = {"_target_": "gan_lightning.networks.digit_cnn.MNISTClassifier"}
    return save_classifier(path, MNISTClassifier(), config, test_accuracy=None, dataset="MNIST")


def run_cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m <module> args...`` from ``cwd``, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
