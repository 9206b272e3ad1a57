"""Divergence guard (NaN/inf losses and weights) and the mode-collapse warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from reliability_helpers import compose_run, scalar_curves
from torch import nn

from gan_lightning.errors import DivergenceError
from gan_lightning.gan.guard import NonFiniteGuard, nonfinite_parameters
from gan_lightning.runs.checkpoints import load_checkpoint
from gan_lightning.train import train


def poison(epoch: int, batch_idx: int) -> list[str]:
    """Overrides adding a callback that makes the real images of one batch NaN."""
    return [
        "+callbacks.poison._target_=reliability_helpers.PoisonBatch",
        f"+callbacks.poison.epoch={epoch}",
        f"+callbacks.poison.batch_idx={batch_idx}",
    ]


def assert_finite_epoch_checkpoint(run_dir: Path, epoch: int) -> None:
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == epoch
    assert all(value.isfinite().all() for value in checkpoint["state_dict"].values())
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()


def test_nan_loss_stops_at_once_naming_network_and_step(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_run(run_dir, tiny_mnist_root, ["trainer.max_epochs=3", *poison(1, 2)])
    with pytest.raises(DivergenceError) as caught:
        train(cfg)
    message = str(caught.value)
    # Epoch 0 has 8 batches; batch 2 of epoch 1 fails before its D step completes.
    assert "The discriminator loss is nan in epoch 1, after 10 D and 10 G steps" in message
    assert f"last good checkpoint, {run_dir / 'checkpoints' / 'last.ckpt'}" in message
    assert_finite_epoch_checkpoint(run_dir, epoch=0)


def test_skip_mode_skips_the_step_counts_it_and_goes_on(
    tmp_path: Path, tiny_mnist_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_run(run_dir, tiny_mnist_root, ["guard.nonfinite=skip", *poison(0, 3)])
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        train(cfg)
    assert (
        "The discriminator loss is nan in epoch 0, after 3 D and 3 G steps: skipped" in caplog.text
    )
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["gan_counters"]["skipped_steps"] == 1
    assert all(value.isfinite().all() for value in checkpoint["state_dict"].values())
    skipped = scalar_curves(run_dir)["guard/skipped_steps"]
    assert [value for _, value in skipped[:5]] == [0, 0, 0, 1, 1]


def test_skip_mode_gives_up_after_max_skipped_steps(tmp_path: Path, tiny_mnist_root: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = ["guard.nonfinite=skip", "guard.max_skipped_steps=0", *poison(0, 3)]
    with pytest.raises(DivergenceError, match="guard.max_skipped_steps=0 already skipped"):
        train(compose_run(run_dir, tiny_mnist_root, overrides))


def test_weights_are_checked_before_the_epoch_checkpoint(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """Without per-step checks, NaN weights are caught at the epoch end, and the checkpoint of
    that epoch is never written: last.ckpt stays the previous, finite one."""
    run_dir = tmp_path / "run"
    overrides = ["trainer.max_epochs=3", "guard.check_every_step=false", *poison(1, 2)]
    with pytest.raises(DivergenceError) as caught:
        train(compose_run(run_dir, tiny_mnist_root, overrides))
    message = str(caught.value)
    assert "NaN/inf weights at the end of epoch 1 (generator: net.0.weight" in message
    assert "; discriminator: net.1.weight" in message  # net.0 is the Flatten
    assert_finite_epoch_checkpoint(run_dir, epoch=0)


def test_nonfinite_parameters_names_each_broken_tensor() -> None:
    good, bad = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():
        bad.bias[1] = float("inf")
    assert nonfinite_parameters(good) == []
    assert nonfinite_parameters(bad) == ["bias"]


def test_guard_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="guard.nonfinite='ignore'.*stop, skip"):
        NonFiniteGuard(nonfinite="ignore")
    with pytest.raises(ValueError) as caught:
        NonFiniteGuard(check_every_step="yes", max_skipped_steps=2.5)
    assert str(caught.value).splitlines() == [
        "guard.check_every_step='yes' is not allowed; it must be true or false",
        "guard.max_skipped_steps=2.5 is not allowed; it must be an integer >= 0",
    ]


def test_skip_mode_counts_each_skipped_step_then_stops_at_its_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = NonFiniteGuard(nonfinite="skip", max_skipped_steps=2)
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        assert guard.skip_or_stop("The generator loss is nan", 1, trainer=None) == 2
    assert "The generator loss is nan: skipped that step (2 so far)" in caplog.text
    with pytest.raises(DivergenceError) as caught:
        guard.skip_or_stop("The generator loss is nan", 2, trainer=None)
    message = str(caught.value)
    assert message.startswith(
        "The generator loss is nan, with guard.max_skipped_steps=2 already skipped. Training "
        "stopped. No checkpoint had been written yet."
    )
    assert "guard.nonfinite=skip" not in message  # it is already on


def test_stop_mode_stops_at_once_and_offers_skipping() -> None:
    with pytest.raises(DivergenceError, match="or guard.nonfinite=skip to skip such steps"):
        NonFiniteGuard().skip_or_stop("The discriminator loss is inf", 0, trainer=None)


def test_weights_check_names_each_broken_network_and_passes_finite_ones() -> None:
    good, bad = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    steps = "after 4 D and 4 G steps"
    NonFiniteGuard.check_weights({"generator": good, "discriminator": good}, 3, steps, None)
    with pytest.raises(DivergenceError) as caught:
        NonFiniteGuard.check_weights({"generator": good, "g_ema": bad}, 3, steps, None)
    assert str(caught.value).startswith(
        "NaN/inf weights at the end of epoch 3 (g_ema: weight), after 4 D and 4 G steps. "
        "Training stopped."
    )
    assert "guard.nonfinite=skip" not in str(caught.value)  # skipping would not help
