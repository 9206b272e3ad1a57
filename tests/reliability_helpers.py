"""Helpers shared by the reliability tests: tiny runs in-process or through the real CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"

#: A run small enough for a test: the MLP GAN, 8 batches per epoch on the tiny dataset, and
#: none of the end-of-run extras (pictures, classifier metrics, progress bar).
TINY = (
    "model=mlp",
    "data.batch_size=32",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks.progress_bar=null",
    "callbacks.training_pictures=null",
    "callbacks.generative_metrics=null",
)


def compose_run(run_dir: Path, data_root: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/train.yaml`` as the CLI would, for a run in ``run_dir``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"data.root={data_root}", *TINY, *overrides],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.runtime.cwd = str(run_dir.parent)
    HydraConfig.instance().set_config(cfg)
    return cfg


def cli_env(data_root: Path) -> dict[str, str]:
    """A user's shell with the data in ``data_root``; the code is this checkout's, and the test
    callbacks below can be named in ``+callbacks.<name>._target_=reliability_helpers.<Class>``."""
    unset = ("HYDRA_FULL_ERROR", "GAN_PROJECT_ROOT")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    path = os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parent)])
    return {**env, "GAN_DATA_DIR": str(data_root), "PYTHONPATH": path}


def run_cli(
    args: Sequence[str], data_root: Path, cwd: Path, *, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m gan_lightning.train <TINY> <args>`` as a user types it; ``stdout`` holds
    everything the user sees (stdout and stderr interleaved)."""
    flags = [arg for arg in args if arg.startswith("-")]  # -m must precede the overrides
    overrides = [arg for arg in args if not arg.startswith("-")]
    return subprocess.run(
        [sys.executable, "-m", "gan_lightning.train", *flags, *TINY, *overrides],
        cwd=cwd,
        env=cli_env(data_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def scalar_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of a run's TensorBoard folder (all its event files, in order)."""
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


class PoisonBatch(pl.Callback):
    """Turns the real images of one batch into NaN: a divergence at a known step."""

    def __init__(self, epoch: int, batch_idx: int) -> None:
        self.epoch = epoch
        self.batch_idx = batch_idx

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch_idx):
            batch[0].fill_(math.nan)


class FakeClassCoverage(pl.Callback):
    """Logs ``metrics/min_class_fraction`` as the metrics callback does, from a fixed list."""

    def __init__(self, fractions: list[float]) -> None:
        self.fractions = fractions

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.log("metrics/min_class_fraction", self.fractions[trainer.current_epoch])


class BrokenCallback(pl.Callback):
    """Raises an error no guard knows: stands for a bug, whose traceback must stay visible."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise RuntimeError("a bug")
