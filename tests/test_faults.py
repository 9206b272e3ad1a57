"""Faults in the middle of a run: atomic writes, the newest complete state, one-paragraph
messages for a crashing callback, and a trained run kept when end-of-run work fails."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path
from typing import IO, Any

import pytest
import pytorch_lightning as pl
import torch
from reliability_helpers import compose_run

from gan_lightning.errors import RunFault
from gan_lightning.runs import checkpoint_io, disk_space
from gan_lightning.runs.checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointWriteError,
    atomic_save,
    partial_path,
)
from gan_lightning.runs.checkpoints import load_checkpoint, newest_complete_checkpoint
from gan_lightning.runs.faults import TRACEBACK_FILE
from gan_lightning.train import train


class FailingCallback(pl.Callback):
    """Raises in ``hook`` from ``epoch`` on: a picture or metric callback with a bug."""

    def __init__(self, hook: str, epoch: int) -> None:
        self.epoch = epoch
        setattr(self, hook, self._fail)

    def _fail(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.current_epoch >= self.epoch:  # on_train_end comes after the last epoch
            raise RuntimeError("the picture could not be drawn")


def failing(hook: str, epoch: int) -> list[str]:
    return [
        f"+callbacks.training_pictures._target_={__name__}.FailingCallback",
        f"+callbacks.training_pictures.hook={hook}",
        f"+callbacks.training_pictures.epoch={epoch}",
    ]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    atomic_save({"version": 1}, path)

    def disk_full(obj: Any, file: IO[bytes]) -> None:
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def interrupted(obj: Any, file: IO[bytes]) -> None:
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    with pytest.raises(CheckpointWriteError, match="the disk is full") as caught:
        atomic_save({"version": 2}, path, disk_full)
    assert caught.value.path == path and caught.value.errno == errno.ENOSPC
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"version": 2}, path, interrupted)
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]

    atomic_save({"version": 2}, path)
    assert torch.load(path, weights_only=True) == {"version": 2}
    assert not partial_path(path).exists()


def test_torch_reporting_a_full_disk_as_a_runtime_error_is_still_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's zip writer says "unexpected pos" where the OS said ENOSPC: the free space decides."""
    path = tmp_path / "last.ckpt"
    atomic_save({"version": 1}, path)
    free = {"bytes": 0}
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        checkpoint_io.shutil, "disk_usage", lambda _: usage._replace(free=free["bytes"])
    )

    def torch_on_a_full_disk(obj: Any, file: IO[bytes]) -> None:
        file.write(b"half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 17")

    with pytest.raises(CheckpointWriteError, match="the disk is full") as caught:
        atomic_save({"version": 2}, path, torch_on_a_full_disk)
    assert caught.value.errno == errno.ENOSPC and caught.value.path == path
    assert isinstance(caught.value.__cause__, RuntimeError)
    # With room on the disk the same error is a bug, not a full disk: it is not renamed.
    free["bytes"] = 10 * checkpoint_io.FULL_DISK_BYTES
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic_save({"version": 2}, path, torch_on_a_full_disk)
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_lightning_writes_through_the_atomic_plugin(tmp_path: Path, tiny_mnist_root: Path) -> None:
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, ["trainer.max_epochs=1"])
    from gan_lightning.build import build_trainer

    assert isinstance(build_trainer(cfg).strategy.checkpoint_io, AtomicCheckpointIO)


def fake_checkpoint(path: Path, epoch: int, step: int) -> None:
    torch.save({"epoch": epoch, "global_step": step, "state_dict": {}}, path)


def test_ckpt_path_last_takes_the_newest_complete_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_checkpoint(tmp_path / "last.ckpt", 1, 16)
    fake_checkpoint(tmp_path / "epoch_001.ckpt", 1, 16)
    assert newest_complete_checkpoint(tmp_path).path.name == "last.ckpt"  # a tie: last wins

    fake_checkpoint(tmp_path / "interrupted.ckpt", 2, 20)
    newest = newest_complete_checkpoint(tmp_path)
    assert newest.path.name == "interrupted.ckpt"
    assert newest.describe() == "stopped in epoch 2, step 20"

    # Stopped between writing the epoch file and last.ckpt: the epoch file is newer.
    fake_checkpoint(tmp_path / "epoch_002.ckpt", 2, 24)
    assert newest_complete_checkpoint(tmp_path).describe() == "the end of epoch 2"

    # A truncated file (an older version's) is skipped, saying so; empty folders have none.
    (tmp_path / "epoch_003.ckpt").write_bytes((tmp_path / "last.ckpt").read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        assert newest_complete_checkpoint(tmp_path).path.name == "epoch_002.ckpt"
    assert "Skipping" in caplog.text and "epoch_003.ckpt" in caplog.text
    assert newest_complete_checkpoint(tmp_path / "nothing") is None


def test_a_crashing_callback_mid_run_is_one_paragraph_and_the_run_resumes(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_run(
        run_dir, tiny_mnist_root, ["trainer.max_epochs=3", *failing("on_train_epoch_end", 1)]
    )
    with pytest.raises(RunFault) as caught:
        train(cfg)
    message = str(caught.value)
    interrupted = run_dir / "checkpoints" / "interrupted.ckpt"
    assert message.startswith(
        "The FailingCallback callback (callbacks.training_pictures) failed in on_train_epoch_end "
        "in epoch 1: RuntimeError: the picture could not be drawn."
    )
    # The crash saved epoch 1's steps; they are the newest state, and what ckpt_path=last takes.
    assert f"The last good checkpoint is {interrupted} (stopped in epoch 1, step 32)" in message
    assert "To run without it: callbacks.training_pictures=null." in message
    assert f"The traceback is in {run_dir / TRACEBACK_FILE}." in message
    assert "Traceback" in (run_dir / TRACEBACK_FILE).read_text()
    assert f"hydra.run.dir={run_dir} ckpt_path=last" in message
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 0

    train(compose_run(run_dir, tiny_mnist_root, ["trainer.max_epochs=3", "ckpt_path=last"]))
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 2
    assert not interrupted.exists(), "a finished fit removes the interrupted state it passed"


@pytest.mark.parametrize("hook", ["on_train_epoch_end", "on_train_end"])
def test_a_failure_at_the_end_of_training_keeps_the_trained_run(
    tmp_path: Path, tiny_mnist_root: Path, hook: str
) -> None:
    """The final metrics run at the last epoch's end, before ModelCheckpoint; the pictures
    after it. Either way the trained state ends up in last.ckpt and the message says so."""
    run_dir = tmp_path / "run"
    cfg = compose_run(run_dir, tiny_mnist_root, ["trainer.max_epochs=2", *failing(hook, 1)])
    with pytest.raises(RunFault) as caught:
        train(cfg)
    message = str(caught.value)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"failed in {hook} at the end of training: RuntimeError" in message
    assert (
        f"Training had finished all its epochs, and the trained run is saved: {last} "
        "(the end of epoch 1); nothing needs training again." in message
    )
    assert "resume" not in message
    checkpoint = load_checkpoint(last)
    assert checkpoint["epoch"] == 1 and checkpoint["gan_counters"]["d_steps"] == 16
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()


def test_a_disk_too_small_for_the_run_is_warned_about_at_start(
    tmp_path: Path,
    tiny_mnist_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    usage = disk_space.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        disk_space.shutil, "disk_usage", lambda path: usage._replace(free=3 * 2**20)
    )
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        train(compose_run(tmp_path / "run", tiny_mnist_root, ["trainer.max_epochs=1"]))
    # The MLP GAN: 225,649 parameters in float32, with Adam's two moments: 2.6 MB per file.
    assert f"The disk holding {tmp_path / 'run'} has 3 MB free" in caplog.text
    assert "4 checkpoints of 3 MB at once" in caplog.text
    assert "paths.log_dir=<folder>" in caplog.text
