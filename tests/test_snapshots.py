"""``callbacks.snapshots`` (TimedSnapshots): weights at fixed minutes of training, and why it is
not Lightning's ``ModelCheckpoint(train_time_interval=...)`` yet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from gan_lightning.callbacks import snapshots
from gan_lightning.callbacks.snapshots import END_FILE, TimedSnapshots
from gan_lightning.config import validate
from gan_lightning.errors import ConfigError

SNAPSHOTS = "+callbacks.snapshots._target_=gan_lightning.callbacks.snapshots.TimedSnapshots"


class Steps(pl.LightningModule):
    """The smallest trainable module, optimized by hand (as the GAN module is) or by Lightning."""

    def __init__(self, manual: bool = True) -> None:
        super().__init__()
        self.automatic_optimization = not manual
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        loss = self.layer(batch[0]).square().mean()
        if self.automatic_optimization:
            return loss
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(callback: pl.Callback, root: Path, batches: int, manual: bool = True) -> None:
    trainer = pl.Trainer(
        default_root_dir=root,
        max_epochs=1,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=isinstance(callback, ModelCheckpoint),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Steps(manual), DataLoader(TensorDataset(torch.randn(batches, 2)), batch_size=1))


def test_lightnings_time_interval_checkpoint_still_saves_nothing_under_manual_optimization(
    tmp_path: Path,
) -> None:
    """The reason TimedSnapshots exists. An interval of zero saves after every batch of an
    automatically optimized module; under manual optimization Lightning 2.6 never looks at it."""

    def every_batch(folder: Path) -> ModelCheckpoint:
        return ModelCheckpoint(
            dirpath=folder, filename="{step}", save_top_k=-1, train_time_interval=timedelta(0)
        )

    fit(every_batch(tmp_path / "automatic"), tmp_path, batches=3, manual=False)
    assert len(list((tmp_path / "automatic").glob("*.ckpt"))) == 3
    fit(every_batch(tmp_path / "manual"), tmp_path, batches=3)
    assert not list((tmp_path / "manual").glob("*.ckpt")), (
        "Lightning's ModelCheckpoint(train_time_interval=...) now saves under manual "
        "optimization: replace callbacks/snapshots.TimedSnapshots with it"
    )


def test_snapshots_are_named_by_the_minute_passed_and_the_end_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock that moves half a minute per reading: the first batch starts at 0, the batch
    ends read 0.5, 1.0, 1.5, 2.0 minutes, and the end of training 2.5."""
    readings = iter(range(0, 1000, 30))

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return float(next(readings))

    monkeypatch.setattr(snapshots, "time", Clock)
    fit(TimedSnapshots(every_minutes=1), tmp_path, batches=4)
    folder = tmp_path / "snapshots"
    assert sorted(path.name for path in folder.glob("*.ckpt")) == [
        "minute_001.00.ckpt",
        "minute_002.00.ckpt",
    ]
    assert (folder / END_FILE).read_text() == "2.5000\n"
    saved: dict[str, Any] = torch.load(folder / "minute_002.00.ckpt", weights_only=True)
    assert "optimizer_states" not in saved and "layer.weight" in saved["state_dict"]


@pytest.mark.parametrize("every_minutes", [0, -1, "1", None])
def test_a_wrong_interval_is_refused_naming_the_key(every_minutes: Any, compose_train) -> None:
    """``config.validate`` reads the rule from the class the entry names; built directly, the
    callback refuses the same values."""
    expected = "callbacks.snapshots.every_minutes=.* is not allowed; it must be a number > 0"
    with pytest.raises(ConfigError, match=expected):
        TimedSnapshots(every_minutes=every_minutes)
    value = "null" if every_minutes is None else repr(every_minutes)
    cfg = compose_train([SNAPSHOTS, f"+callbacks.snapshots.every_minutes={value}"])
    with pytest.raises(ConfigError, match=expected):
        validate(cfg)
