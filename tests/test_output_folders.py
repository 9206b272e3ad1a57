"""Output folders: never overwritten silently; an unwritable or full location fails at start."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_helpers import compose_run, run_cli

from gan_lightning.errors import RunError
from gan_lightning.runs import folder as run_folder
from gan_lightning.runs.folder import ensure_writable, resolve_ckpt_path
from gan_lightning.train import train


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder no run can write into: read-only permissions, or sysfs when running as root
    (root ignores permission bits, but sysfs refuses new folders even to root)."""
    if os.geteuid() == 0:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root without sysfs: no unwritable folder to test with")
        yield Path("/sys/kernel")
        return
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_an_existing_run_folder_is_never_overwritten(tmp_path: Path, tiny_mnist_root: Path) -> None:
    run_dir = tmp_path / "run"
    first = run_cli(["trainer.max_epochs=1", f"hydra.run.dir={run_dir}"], tiny_mnist_root, tmp_path)
    assert first.returncode == 0, first.stdout
    saved_config = (run_dir / ".hydra" / "config.yaml").read_text()
    checkpoint = (run_dir / "checkpoints" / "last.ckpt").read_bytes()

    again = run_cli(["seed=7", f"hydra.run.dir={run_dir}"], tiny_mnist_root, tmp_path)
    assert again.returncode == 1
    assert f"RunError: {run_dir} already holds a run (last.ckpt)" in again.stdout
    assert "Resume it with ckpt_path=last" in again.stdout
    assert "Traceback" not in again.stdout
    # Refused before Hydra wrote anything: the old run's config copy and checkpoint are intact.
    assert (run_dir / ".hydra" / "config.yaml").read_text() == saved_config
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == checkpoint


def test_an_unwritable_output_location_fails_at_start(
    tmp_path: Path, tiny_mnist_root: Path, unwritable_dir: Path
) -> None:
    run_dir = unwritable_dir / "gan_run"
    result = run_cli([f"hydra.run.dir={run_dir}"], tiny_mnist_root, tmp_path)
    assert result.returncode == 1
    assert f"RunError: cannot write to the output folder {run_dir}" in result.stdout
    assert "paths.log_dir=<folder>" in result.stdout
    assert "Traceback" not in result.stdout


def test_a_full_disk_fails_at_start_before_any_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_folder.os, "fsync", disk_full)
    with pytest.raises(RunError, match="cannot write to the output folder .*: the disk is full"):
        ensure_writable(tmp_path / "run")
    # Through train: the data root does not even exist, yet the disk is what is reported.
    cfg = compose_run(tmp_path / "run", tmp_path / "no_data")
    with pytest.raises(RunError, match="the disk is full"):
        train(cfg)


def test_a_sweep_folder_holding_runs_is_not_reused(tmp_path: Path, tiny_mnist_root: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    old_job = sweep_dir / "seed=1" / "checkpoints"
    old_job.mkdir(parents=True)
    (old_job / "last.ckpt").write_bytes(b"an earlier sweep's checkpoint")
    result = run_cli(["-m", "seed=1,2", f"hydra.sweep.dir={sweep_dir}"], tiny_mnist_root, tmp_path)
    assert result.returncode == 1
    assert f"the sweep folder {sweep_dir} already holds runs" in result.stdout
    assert "ckpt_path=last" in result.stdout
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["seed=1"]


def test_ckpt_path_last_needs_the_old_folder_except_in_a_sweep(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="pass the old run's folder too: hydra.run.dir="):
        resolve_ckpt_path("last", tmp_path)
    with pytest.raises(RunError, match="no checkpoint at .*missing.ckpt"):
        resolve_ckpt_path(str(tmp_path / "missing.ckpt"), tmp_path)
    # A re-run sweep restarts the jobs that never reached a checkpoint.
    assert resolve_ckpt_path("last", tmp_path, sweep_job=True) is None
