"""Failures as the user sees them: a sweep finishes its other jobs and says which failed and why;
a single run fails with one clear message (a traceback only for unexpected errors)."""

from __future__ import annotations

import csv
from pathlib import Path

from reliability_helpers import run_cli

from gan_lightning.sweeps.jobs import FAILURE_FILE


def job_with_lr(sweep_dir: Path, lr: float) -> Path:
    """The job folder (named by Hydra from its normalized overrides) of ``optim.d.lr=lr``."""
    jobs = [job for job in sweep_dir.iterdir() if job.is_dir()]
    (job,) = [job for job in jobs if float(dict_of(job.name)["optim.d.lr"]) == lr]
    return job


def dict_of(override_dirname: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in override_dirname.split(","))


def summary_rows(sweep_dir: Path) -> dict[str, dict[str, str]]:
    """``summary.csv`` by job folder name."""
    with (sweep_dir / "summary.csv").open() as file:
        return {row["job"]: row for row in csv.DictReader(file)}


def test_a_sweep_with_a_diverging_and_a_misconfigured_job_finishes_the_others(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """Stress test: four tiny jobs; lr 1e30 makes one diverge, lr -1 is refused by validation.

    The sweep ends with its answer in summary.csv/summary.md: one row per job, the overrides as
    columns, the status, epochs and wall time of each; jobs without a classifier still get one.
    """
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "optim.d.lr=1e-4,2e-4,1e30,-1",
            "trainer.max_epochs=1",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tiny_mnist_root,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout
    assert f"Sweep {sweep_dir}: 2 succeeded, 2 failed" in result.stdout
    rows = summary_rows(sweep_dir)
    assert len(rows) == 4
    assert "optim.d.lr" in next(iter(rows.values()))  # a column, not part of one long string
    assert (
        "| optim.d.lr | status | epochs | wall s | metrics/fid ↓ |"
        in (sweep_dir / "summary.md").read_text()
    )

    for lr in (1e-4, 2e-4):
        job = job_with_lr(sweep_dir, lr)
        row = rows[job.name]
        assert (row["status"], row["epochs"], row["model"]) == ("ok", "1", "mlp")
        assert float(row["wall_time_s"]) > 0
        assert row["metrics/fid"] == ""  # no classifier, no FID: still a row
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert not (job / FAILURE_FILE).exists()

    diverged = job_with_lr(sweep_dir, 1e30)
    assert rows[diverged.name]["status"] == "diverged at epoch 0"
    assert "DivergenceError: The " in (diverged / FAILURE_FILE).read_text()
    assert not (diverged / "checkpoints" / "last.ckpt").exists()

    refused = job_with_lr(sweep_dir, -1)
    assert rows[refused.name]["status"] == (
        "failed: ConfigError: invalid config: optim.d.lr=-1 is not allowed; it must be a number > 0"
    )
    assert (refused / FAILURE_FILE).read_text().startswith("ConfigError: invalid config")
    assert [row["status"] for row in rows.values()][:2] == ["ok", "ok"]  # successes first


def assert_one_clear_message(tmp_path: Path, tiny_mnist_root: Path, args: list[str], expected: str):
    result = run_cli([*args, f"hydra.run.dir={tmp_path / 'run'}"], tiny_mnist_root, tmp_path)
    assert result.returncode == 1
    assert expected in result.stdout
    assert "Traceback" not in result.stdout
    assert "HYDRA_FULL_ERROR=1" in result.stdout  # how to get the trace when it is wanted


def test_a_bad_value_fails_with_one_clear_message(tmp_path: Path, tiny_mnist_root: Path) -> None:
    expected = "ConfigError: invalid config: optim.g.lr=0 is not allowed; it must be a number > 0"
    assert_one_clear_message(tmp_path, tiny_mnist_root, ["optim.g.lr=0"], expected)


def test_bad_data_fails_with_one_clear_message_naming_the_file(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    root = tmp_path / "mnist.tar"  # a file where the data folder should be
    root.write_text("")
    expected = f"DataError: Data root {root} is a file, not a folder."
    assert_one_clear_message(tmp_path, tiny_mnist_root, [f"data.root={root}"], expected)


def test_an_unexpected_error_is_one_message_and_keeps_its_traceback_in_a_file(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    broken = ["+callbacks.broken._target_=reliability_helpers.BrokenCallback"]
    run_dir = tmp_path / "run"  # the helper's folder
    expected = (
        "RunFault: The BrokenCallback callback (callbacks.broken) failed in on_fit_start in "
        "epoch 0: RuntimeError: a bug. No checkpoint had been saved yet."
    )
    assert_one_clear_message(tmp_path, tiny_mnist_root, broken, expected)
    assert "RuntimeError: a bug" in (run_dir / "traceback.txt").read_text()
