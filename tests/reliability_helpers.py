"""Helpers shared by the reliability tests: tiny runs in-process or through the real CLI."""

from __future__ import annotations

import errno
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_lightning.runs.checkpoint_io import AtomicCheckpointIO

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


#: Everything in a checkpoint that must match; run_config and callback states name the folder,
#: but for the random streams' (RandomStates), which must match too.
COMPARED = (
    "epoch",
    "global_step",
    "state_dict",
    "optimizer_states",
    "lr_schedulers",
    "loops",
    "gan_counters",
)


def assert_identical(a: Any, b: Any, where: str) -> None:
    """Equal to the last bit, recursively: tensors with torch.equal, numbers with ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, Mapping):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{index}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    """Two checkpoints hold the same training state, random streams included, to the last bit."""
    for key in COMPARED:
        assert_identical(a[key], b[key], key)
    rng = "RandomStates"
    assert_identical(a["callbacks"][rng], b["callbacks"][rng], f"callbacks.{rng}")


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


class BrokenCallback(pl.Callback):
    """Raises an error no guard knows: stands for a bug, whose traceback must not be lost."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise RuntimeError("a bug")


class SlowCheckpointIO(AtomicCheckpointIO):
    """Takes ``delay`` seconds between writing a checkpoint and renaming it into place, so that
    a kill can land inside the write (its temporary file then stays behind)."""

    def __init__(self, delay: float = 0.1) -> None:
        super().__init__()
        self.delay = delay

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        super().write(checkpoint, file)
        time.sleep(self.delay)


class DiskFullCheckpointIO(AtomicCheckpointIO):
    """Fails every checkpoint of epoch ``from_epoch`` on as a full disk does, half-way through."""

    def __init__(self, from_epoch: int = 1) -> None:
        super().__init__()
        self.from_epoch = from_epoch

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        if checkpoint["epoch"] < self.from_epoch:
            super().write(checkpoint, file)
            return
        file.write(bytes(4096))  # some bytes made it, as on a real disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
