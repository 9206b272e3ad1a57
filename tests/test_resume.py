"""Exact resume: a run stopped after an epoch (cleanly, by SIGTERM or Ctrl-C) and resumed with
``ckpt_path=last`` ends bit for bit where an uninterrupted run ends, logged curves included."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability_helpers import (
    TINY,
    assert_same_state,
    cli_env,
    compose_run,
    run_cli,
    scalar_curves,
)

from gan_lightning.runs.checkpoints import load_checkpoint
from gan_lightning.train import train

#: Deterministic kernels, the averaged generator and a scheduler, so all of their states count.
EXACT = ("trainer.deterministic=true", "tricks.ema_decay=0.9", "scheduler.g=step")


def assert_same_run(run_a: Path, run_b: Path) -> None:
    """Same final checkpoint (weights, optimizers, EMA, fixed noise, counters, RNG states)
    and the same scalar curves read back from every TensorBoard event file of each run."""
    a = load_checkpoint(run_a / "checkpoints" / "last.ckpt")
    b = load_checkpoint(run_b / "checkpoints" / "last.ckpt")
    assert_same_state(a, b)
    curves_a, curves_b = scalar_curves(run_a), scalar_curves(run_b)
    assert "loss/d_step" in curves_a and "loss/g_epoch" in curves_a
    assert curves_a == curves_b


def test_stopped_and_resumed_run_matches_uninterrupted_run(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(compose_run(whole, tiny_mnist_root, [*EXACT, "trainer.max_epochs=3"]))
    train(compose_run(parts, tiny_mnist_root, [*EXACT, "trainer.max_epochs=1"]))
    train(compose_run(parts, tiny_mnist_root, [*EXACT, "trainer.max_epochs=3", "ckpt_path=last"]))

    assert len(list((parts / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert_same_run(whole, parts)
    checkpoint = load_checkpoint(parts / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 2 and checkpoint["gan_counters"]["d_steps"] == 24
    assert "g_ema.net.0.weight" in checkpoint["state_dict"]
    assert "fixed_noise" in checkpoint["state_dict"]


def interrupt_after_first_epoch(run_dir: Path, args: list[str], root: Path, sig: int) -> str:
    """Start a long run, send ``sig`` once its first epoch is saved, return its output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.train", *TINY, *args, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        env=cli_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = run_dir / "checkpoints" / "last.ckpt"  # written atomically (temp file + rename)
    deadline = time.monotonic() + 300  # a guard against hanging, not a timing assertion
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()[0]
    process.send_signal(sig)
    output, _ = process.communicate(timeout=300)
    expected = 128 + signal.SIGTERM if sig == signal.SIGTERM else 1
    assert process.returncode == expected, output
    return output


def test_sigterm_saves_a_checkpoint_and_the_run_resumes_exactly(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    long_run = [*EXACT, "trainer.max_epochs=1000"]
    output = interrupt_after_first_epoch(stopped, long_run, tiny_mnist_root, signal.SIGTERM)

    interrupted = stopped / "checkpoints" / "interrupted.ckpt"
    last_path = stopped / "checkpoints" / "last.ckpt"
    assert "Training stopped by SIGTERM" in output and str(interrupted) in output
    # ckpt_path=last takes the interrupted state (the newest); last.ckpt is the bit-exact one.
    assert f"hydra.run.dir={stopped} ckpt_path=last" in output
    assert f"hydra.run.dir={stopped} ckpt_path={last_path}" in output
    epoch = load_checkpoint(interrupted)["epoch"]  # the epoch the signal cut short
    last = load_checkpoint(last_path)
    assert last["epoch"] == epoch - 1, "last.ckpt must stay the last finished epoch"

    # The resumed run ends after the cut-short epoch; so does an uninterrupted one.
    finish = [*EXACT, f"trainer.max_epochs={epoch + 1}"]
    resumed = run_cli(
        [*finish, f"hydra.run.dir={stopped}", f"ckpt_path={last_path}"], tiny_mnist_root, tmp_path
    )
    assert resumed.returncode == 0, resumed.stdout
    assert not interrupted.exists(), "a finished fit removes the stale interrupted state"
    train(compose_run(whole, tiny_mnist_root, finish))
    assert_same_run(whole, stopped)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir = tmp_path / "run"
    output = interrupt_after_first_epoch(
        run_dir, ["trainer.max_epochs=1000"], tiny_mnist_root, signal.SIGINT
    )
    interrupted = run_dir / "checkpoints" / "interrupted.ckpt"
    assert "Ctrl-C: stopping after this batch" in output  # at a safe point, not mid-step
    assert "Training stopped by Ctrl-C" in output
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"ckpt_path={last}" in output and "ckpt_path=last" in output
    assert load_checkpoint(interrupted)["global_step"] > 0


def test_a_rerun_sweep_resumes_each_job_in_its_own_folder(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", "seed=1,2", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"]
    first = run_cli(sweep, tiny_mnist_root, tmp_path)
    assert first.returncode == 0, first.stdout
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [f"seed={seed}" in job.name.split(",") for seed, job in enumerate(jobs, 1)] == [1, 1]

    again = run_cli([*sweep, "ckpt_path=last"], tiny_mnist_root, tmp_path)
    assert again.returncode == 0, again.stdout
    for job in jobs:
        restored = job / "checkpoints" / "last.ckpt"
        assert f"Restoring states from the checkpoint path at {restored}" in again.stdout
    assert sorted(p for p in sweep_dir.iterdir() if p.is_dir()) == jobs
