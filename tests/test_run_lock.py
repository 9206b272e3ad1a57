"""One run per folder: a second process is refused at once, naming the holder; a killed holder's
folder is free again at once; the run-folder step runs once per run and only on rank 0."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
from omegaconf import OmegaConf
from reliability_helpers import REPO_ROOT, TINY, cli_env, compose_run, run_cli

from gan_lightning import train as train_command
from gan_lightning.hydra_callbacks import RunFolderCheck
from gan_lightning.runs import folder as run_folder
from gan_lightning.runs import lock
from gan_lightning.runs.checkpoints import load_checkpoint
from gan_lightning.runs.lock import LOCK_FILE, FolderInUse
from gan_lightning.sweeps.jobs import FAILURE_FILE, RESULT_FILE
from gan_lightning.train import train

HOST = socket.gethostname()
#: A guard against a hung process, not a timing assertion.
DEADLINE = 300


class Gate(pl.Callback):
    """Stops a run at the start of epoch ``epoch`` (after the checkpoints of the epochs before
    it) until the file ``path`` exists; ``<path>.waiting`` says it got there. Named on the
    command line as ``+callbacks.gate._target_=test_run_lock.Gate``."""

    def __init__(self, path: str, epoch: int = 0) -> None:
        self.path = Path(path)
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch != self.epoch:
            return
        self.path.with_suffix(".waiting").touch()
        while not self.path.exists():
            time.sleep(0.05)


def gate(path: Path, epoch: int = 0) -> list[str]:
    return [
        "+callbacks.gate._target_=test_run_lock.Gate",
        f"+callbacks.gate.path={path}",
        f"+callbacks.gate.epoch={epoch}",
    ]


def start(args: list[str], data_root: Path, cwd: Path) -> subprocess.Popen[str]:
    """``python -m gan_lightning.train <TINY> <args>`` in the background, as a user starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.train", *TINY, *args],
        cwd=cwd,
        env=cli_env(data_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition, *processes: subprocess.Popen[str]) -> None:
    """Until ``condition()``; fails with a process's output when it ended first."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"ended early ({process.returncode}):\n{process.communicate()[0]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def holder_of(run_dir: Path) -> dict:
    return json.loads((run_dir / LOCK_FILE).read_text())


def in_use_message(run_dir: Path, pid: int) -> str:
    return f"RunError: {run_dir} is in use by another run: process {pid} on {HOST}, since "


def test_a_second_run_started_into_a_folder_in_use_is_refused_and_the_first_is_untouched(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir, go = tmp_path / "run", tmp_path / "go"
    common = ["trainer.max_epochs=1", f"hydra.run.dir={run_dir}", *gate(go)]
    first = start(["seed=1", *common], tiny_mnist_root, tmp_path)
    time.sleep(0.5)  # both are still starting: the one that locks first runs
    second = start(["seed=2", *common], tiny_mnist_root, tmp_path)
    try:
        # The runner waits at its gate until the other one has been turned away.
        wait_for(lambda: first.poll() is not None or second.poll() is not None)
        refused, runner = (first, second) if first.poll() is not None else (second, first)
        told = refused.communicate()[0]
        go.touch()
        output = runner.communicate(timeout=DEADLINE)[0]
    finally:
        go.touch()
        for process in (first, second):
            process.kill()
            process.wait()

    print(f"The {'first' if refused is first else 'second'} process was told:\n{told}")
    assert refused.returncode == 1, told
    assert in_use_message(run_dir, runner.pid) in told
    assert "resume it with ckpt_path=last" in told and "Traceback" not in told
    assert runner.returncode == 0, output
    # Only the runner wrote: its checkpoints (no -v1 copies), its events, its config.
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    print(f"The runner's checkpoints: {checkpoints}")
    assert checkpoints == ["epoch_000.ckpt", "last.ckpt"]
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 0
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    seed = OmegaConf.load(run_dir / ".hydra" / "config.yaml").seed
    assert seed == (1 if runner is first else 2)


def test_a_resume_is_refused_while_the_holder_lives_and_takes_over_once_it_is_killed(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir, go = tmp_path / "run", tmp_path / "go"
    two_epochs = ["trainer.max_epochs=2", f"hydra.run.dir={run_dir}"]
    holder = start([*two_epochs, *gate(go, epoch=1)], tiny_mnist_root, tmp_path)
    try:
        wait_for(go.with_suffix(".waiting").exists, holder)  # epoch 0 saved, epoch 1 waits
        config = (run_dir / ".hydra" / "config.yaml").read_text()

        # A job resubmitted while the old one still runs: refused at once, nothing written.
        early = run_cli([*two_epochs, "ckpt_path=last"], tiny_mnist_root, tmp_path)
        assert early.returncode == 1, early.stdout
        assert in_use_message(run_dir, holder.pid) in early.stdout
        assert (run_dir / ".hydra" / "config.yaml").read_text() == config
        assert holder.poll() is None, "the holder runs on"

        holder.send_signal(signal.SIGKILL)
        holder.wait()
    finally:
        holder.kill()
        holder.communicate()
    assert holder_of(run_dir)["pid"] == holder.pid  # what the dead holder left behind

    resumed = run_cli([*two_epochs, "ckpt_path=last"], tiny_mnist_root, tmp_path)
    assert resumed.returncode == 0, resumed.stdout
    assert f"ckpt_path=last: resuming from {run_dir / 'checkpoints' / 'last.ckpt'}" in (
        resumed.stdout
    )
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["epoch_001.ckpt", "last.ckpt"]
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 1


# ------------------------------------------------------------------ the lock itself
HOLDER = """
import os, sys, time
from pathlib import Path
from gan_lightning.runs.lock import hold
hold(Path(sys.argv[1]))
readable, writable = os.pipe()
child = os.fork()  # a child that can outlive the holder, as a DataLoader worker can
if child == 0:
    os.write(writable, b"!")  # its at-fork clean-up has run
    time.sleep(600)
    os._exit(0)
os.read(readable, 1)
print(child, flush=True)
time.sleep(600)
"""


@pytest.fixture
def other_holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str], int]]:
    """A folder that another process holds; that process has forked a child. Yields the
    folder, the holder and its child's pid."""
    folder = tmp_path / "held"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(holder.stdout.readline())
    try:
        yield folder, holder, child
    finally:
        holder.kill()
        holder.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_killed_holder_frees_the_folder_even_while_its_forked_child_lives(
    other_holder: tuple[Path, subprocess.Popen[str], int],
) -> None:
    folder, holder, child = other_holder
    with pytest.raises(FolderInUse, match=f"process {holder.pid} on {HOST}, since "):
        lock.hold(folder)
    assert not lock.holds(folder)

    holder.send_signal(signal.SIGKILL)
    holder.wait()
    os.kill(child, 0)  # still alive, yet it does not keep the folder held
    lock.hold(folder)
    try:
        assert lock.holds(folder) and holder_of(folder)["pid"] == os.getpid()
        lock.hold(folder)  # holding it again is a no-op, not a refusal of oneself
    finally:
        lock.release(folder)
    assert not lock.holds(folder)
    lock.hold(folder)  # released: anyone may take it
    lock.release(folder)


def test_a_sweep_job_whose_folder_another_process_holds_writes_nothing_into_it(
    tmp_path: Path,
    tiny_mnist_root: Path,
    other_holder: tuple[Path, subprocess.Popen[str], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder, holder, _ = other_holder
    before = sorted(folder.iterdir())
    cfg = compose_run(folder, tiny_mnist_root)
    with caplog.at_level(logging.ERROR):
        value = train_command._sweep_job(cfg, OmegaConf.create({}))
    assert value == float("inf")  # the worst FID: a search counts it as a bad trial
    assert f"This sweep job did not run (the others go on): {folder} is in use" in caplog.text
    assert sorted(folder.iterdir()) == before
    assert not (folder / RESULT_FILE).exists() and not (folder / FAILURE_FILE).exists()


def test_a_file_system_without_locks_runs_unprotected_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_locks(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    lock.hold(tmp_path)
    assert not lock.holds(tmp_path)
    assert f"nothing stops another run from writing into {tmp_path.resolve()}" in caplog.text


# ------------------------------------------------------------------ one prepare step
def test_a_single_run_is_prepared_once_before_hydra_writes_and_held_until_it_ends(
    tmp_path: Path, tiny_mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_run(
        run_dir, tiny_mnist_root, [f"hydra.run.dir={run_dir}", "trainer.max_epochs=1"]
    )
    probed = []
    probe = run_folder.ensure_writable
    monkeypatch.setattr(
        run_folder, "ensure_writable", lambda path: probed.append(path) or probe(path)
    )

    callback = RunFolderCheck()
    callback.on_run_start(cfg)  # what Hydra calls before it writes .hydra/ and the log
    assert lock.holds(run_dir) and holder_of(run_dir)["pid"] == os.getpid()
    train(cfg)
    assert lock.holds(run_dir), "train leaves the callback's hold to the callback"
    callback.on_run_end(cfg)
    assert not lock.holds(run_dir)
    assert probed == [run_dir]  # the checks ran once, in the callback

    # From Python, train prepares the folder itself and lets it go at its end.
    resumed = compose_run(run_dir, tiny_mnist_root, ["trainer.max_epochs=2", "ckpt_path=last"])
    train(resumed)
    assert not lock.holds(run_dir) and probed == [run_dir, run_dir]
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 1


@pytest.mark.parametrize("variable", ["LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"])
def test_the_other_ranks_of_a_distributed_run_share_rank_zeros_folder_without_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "1")
    with run_folder.prepared(tmp_path, None) as run:
        assert run.ckpt_path is None
        assert not lock.holds(tmp_path)
    assert not (tmp_path / LOCK_FILE).exists()
