"""The global random streams ride in checkpoints (``callbacks.random_states``) and come back on
resume; ``tests/test_resume.py`` proves the whole run replays, these the callback's own contract."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_lightning.callbacks.random_states import RandomStates


def draws() -> list[Any]:
    """One draw from each global stream a training step may use."""
    return [torch.rand(4), np.random.rand(4).tolist(), random.random()]


def assert_same_draws(a: list[Any], b: list[Any]) -> None:
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_states_survive_a_weights_only_checkpoint_and_replay_the_stream(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    path = tmp_path / "last.ckpt"
    torch.save({"callbacks": {"RandomStates": RandomStates().state_dict()}}, path)
    expected = draws()
    draws()  # the stream moves on, as training does after a checkpoint
    resumed = RandomStates()
    resumed.load_state_dict(torch.load(path, weights_only=True)["callbacks"]["RandomStates"])
    moved_on = draws()  # set-up before training starts may draw: nothing is restored yet
    assert not torch.equal(moved_on[0], expected[0])
    resumed.on_train_start(None, None)  # type: ignore[arg-type]
    assert_same_draws(draws(), expected)
    # A second fit of the same trainer does not go back to the checkpoint's states.
    resumed.on_train_start(None, None)  # type: ignore[arg-type]
    assert not torch.equal(draws()[0], expected[0])


def test_a_checkpoint_without_states_leaves_the_stream_alone() -> None:
    resumed = RandomStates()
    resumed.on_load_checkpoint(None, None, {})  # type: ignore[arg-type]
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    resumed.on_train_start(None, None)  # type: ignore[arg-type]
    assert torch.equal(torch.rand(4), expected)
