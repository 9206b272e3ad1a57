"""``python -m gan_lightning.train`` end to end, through Hydra, as a user runs it."""

from __future__ import annotations

import logging
import logging.handlers
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_lightning.runs.checkpoints import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def run_cli(module: str, *args: str, cwd: Path, data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GAN_DATA_DIR": str(data_root), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def scalar_tags(tensorboard_dir: Path) -> set[str]:
    tags: set[str] = set()
    for events in tensorboard_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def test_train_writes_checkpoint_events_and_config_then_resumes(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir = tmp_path / "run"
    common = ["trainer=debug", "model=mlp", "data.batch_size=16", f"hydra.run.dir={run_dir}"]
    first = run_cli("gan_lightning.train", *common, cwd=tmp_path, data_root=tiny_mnist_root)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Tip:" not in first.stdout + first.stderr  # Lightning's advertisement is left out

    assert (run_dir / ".hydra" / "config.yaml").is_file()
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 1
    assert checkpoint["run_config"]["model"]["name"] == "mlp"
    assert {"generator.net.0.weight", "fixed_noise"} <= set(checkpoint["state_dict"])
    assert len(checkpoint["optimizer_states"]) == 2
    tags = scalar_tags(run_dir / "tensorboard")
    assert {"loss/d_step", "loss/g_step", "D(x)_epoch", "D(G(z))_epoch"} <= tags
    assert sorted(p.name for p in (run_dir / "samples").iterdir())[:2] == [
        "epoch_000.png",
        "epoch_001.png",
    ]

    # Resuming the same folder for two more epochs continues from epoch 2.
    resumed = run_cli(
        "gan_lightning.train",
        *common,
        "ckpt_path=last",
        "trainer.max_epochs=4",
        cwd=tmp_path,
        data_root=tiny_mnist_root,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 3


def test_sweep_gives_each_job_its_own_folder(tmp_path: Path, tiny_mnist_root: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        "gan_lightning.train",
        "-m",
        "optim.d.lr=1e-4,5e-4",
        "trainer=debug",
        "trainer.max_epochs=1",
        "model=fc",
        "data.batch_size=16",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
        data_root=tiny_mnist_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir() and p.name != ".hydra")
    # Job folders are named by their overrides, so TensorBoard's run list reads like the sweep.
    assert len(jobs) == 2
    assert "optim.d.lr=0.0001" in jobs[0] and "optim.d.lr=0.0005" in jobs[1]
    for job in jobs:
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file()
        assert list((sweep_dir / job / "tensorboard").glob("events.out.tfevents.*"))
        assert (sweep_dir / job / ".hydra" / "config.yaml").is_file()


def test_sgd_discriminator_override_works_verbatim(compose_train) -> None:
    cfg = compose_train(["model=dcgan", "optim.d=sgd"])
    assert cfg.optim.d._target_ == "torch.optim.SGD"
    assert cfg.optim.g._target_ == "torch.optim.Adam"


def test_an_unknown_option_is_refused_by_hydra_before_any_work(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """Hydra names the option and lists the available ones (they are not ours to repeat)."""
    result = run_cli(
        "gan_lightning.train",
        "model=dcgan9",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        data_root=tiny_mnist_root,
    )
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert "Could not find 'model/dcgan9'" in said
    assert "Available options in 'model':\n\tcgan\n" in said and "\tdcgan28\n" in said
    assert not (tmp_path / "run").exists()


def test_a_sweep_with_an_unknown_option_runs_none_of_its_jobs(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """Every job's options are checked before the first job: the known one does not train."""
    result = run_cli(
        "gan_lightning.train",
        "-m",
        "model=mlp,dcgan9",
        "trainer=debug",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        data_root=tiny_mnist_root,
    )
    assert result.returncode == 1
    said = result.stdout + result.stderr
    assert "model=dcgan9" in said or "model/dcgan9" in said
    assert not list(tmp_path.rglob("*.ckpt"))


def test_lightning_tips_are_hidden_and_its_other_messages_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lightning advertises its cloud logger on every Trainer without one; commands drop that
    line only (``cli.hide_lightning_tips``), not the device report beside it."""
    import pytorch_lightning as pl

    from gan_lightning.cli import LIGHTNING_INFO_LOGGER, TIP_PREFIX, hide_lightning_tips

    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    # Lightning's logger may not propagate to pytest's handlers: listen on it directly.
    handler = logging.handlers.BufferingHandler(capacity=1000)
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, handler])
    monkeypatch.setattr(logger, "level", logging.INFO)

    def messages() -> list[str]:
        handler.flush()
        pl.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
        return [record.getMessage() for record in handler.buffer]

    # Lightning still prints the tip (else this filter is dead code and can go).
    assert any(message.startswith(TIP_PREFIX) for message in messages())
    hide_lightning_tips()
    hide_lightning_tips()  # every command calls it: once is enough
    assert len(logger.filters) == 1
    shown = messages()
    assert not any(TIP_PREFIX in message for message in shown)
    assert any(message.startswith("GPU available:") for message in shown)


@pytest.mark.slow
def test_one_epoch_of_dcgan_on_real_mnist(tmp_path: Path, shared_data_root: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        "gan_lightning.train",
        "trainer.max_epochs=1",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        data_root=shared_data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    # Every one of the 6,309 images, in full batches of 64 (drop_last).
    assert checkpoint["gan_counters"]["d_steps"] == 6309 // 64
