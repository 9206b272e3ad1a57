"""Builders for the classifier, metrics and evaluate tests: judges with known answers, tiny runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_lightning.classifier import save_classifier
from gan_lightning.networks.digit_cnn import MNISTClassifier

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 10


class OneHotJudge(nn.Module):
    """A classifier whose features are fed directly: class k is the k-th unit vector.

    Its head maps one-hot features to confident logits (20 on the class), so the IS, coverage
    and accuracy of a feature set are known in closed form.
    """

    feature_dim = NUM_CLASSES
    num_classes = NUM_CLASSES

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(NUM_CLASSES, NUM_CLASSES, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(20 * torch.eye(NUM_CLASSES))

    def features(self, images: Tensor) -> Tensor:
        raise AssertionError("OneHotJudge is fed features, never images")


def one_hot_features(labels: Tensor) -> Tensor:
    return torch.nn.functional.one_hot(labels, NUM_CLASSES).float()


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(name, overrides=overrides)


def make_classifier_file(path: Path, seed: int = 0) -> Path:
    """An untrained (seeded) MNISTClassifier in the weights-file format."""
    torch.manual_seed(seed)
    config = {"_target_": "gan_lightning.networks.digit_cnn.MNISTClassifier"}
    return save_classifier(path, MNISTClassifier(), config, test_accuracy=None, dataset="MNIST")


def run_cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m <module> args...`` from ``cwd``, as a user types it, output captured.

    ``COLUMNS`` gives rich tables a wide terminal's layout instead of folding cells at 80.
    """
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def tiny_gan_sweep(
    sweep_dir: Path, data_root: Path, classifier: Path, models: str
) -> subprocess.CompletedProcess[str]:
    """``train -m model=<models>``: two 3-batch epochs per job on the tiny data, few samples.

    Jobs are named by model (``<sweep_dir>/dcgan``): the default job names hold every override,
    data.root's slashes and all.
    """
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    return run_cli(
        "gan_lightning.train",
        [
            "-m",
            f"model={models}",
            "trainer=debug",
            f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweep.subdir=${model.name}",
            f"data.root={data_root}",
            "data.batch_size=16",
            f"metrics.classifier_ckpt={classifier}",
            "metrics.num_samples=50",
            "metrics.final_num_samples=100",
            "metrics.batch_size=50",
        ],
        cwd=sweep_dir.parent,
    )
