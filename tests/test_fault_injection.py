"""Hard kills at random moments, and a disk that fills up: every run can still be resumed.

The kill test is the project's proof that ``kill -9`` never leaves a folder that cannot go on:
a tiny deterministic run is killed 24 times at moments drawn from a seeded RNG (during start-up
and steps, inside a checkpoint write, right after an epoch's checkpoints), each time resumed
with ``ckpt_path=last``, until it finishes; then every checkpoint must load, the run must have
finished all its epochs, and its weights, optimizer states, counters and TensorBoard curves
must equal those of an uninterrupted run. Runs are forks of one process that imported the
project once (``forked_cli.py``): twenty fresh interpreters would spend minutes importing torch.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from reliability_helpers import (
    TINY,
    assert_same_state,
    cli_env,
    compose_run,
    run_cli,
    scalar_curves,
)

from gan_lightning.runs.checkpoint_io import PARTIAL_SUFFIX
from gan_lightning.runs.checkpoints import load_checkpoint
from gan_lightning.train import train

KILLS = 24
SEED = 12
WRITE_DELAY = 0.1  # seconds each checkpoint write takes (SlowCheckpointIO): room for a kill
RUN = (
    *TINY,
    "trainer.deterministic=true",
    f"trainer.plugins=[{{_target_:reliability_helpers.SlowCheckpointIO,delay:{WRITE_DELAY}}}]",
)


class ForkedRuns:
    """The ``forked_cli.py`` server: ``start`` forks a run, ``wait`` returns its exit status."""

    def __init__(self, data_root: Path, cwd: Path) -> None:
        # One thread per run: the two kinds of run (killed, uninterrupted) compute alike.
        env = {**cli_env(data_root), "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("forked_cli.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=cwd,
            env=env,
            text=True,
        )

    def _answer(self) -> dict[str, int]:
        line = self.process.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def start(self, args: list[str], log: Path) -> int:
        self.process.stdin.write(json.dumps({"args": args, "log": str(log)}) + "\n")
        self.process.stdin.flush()
        return self._answer()["pid"]

    def wait(self) -> int:
        return self._answer()["status"]

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture
def forked_runs(tiny_mnist_root: Path, tmp_path: Path) -> Iterator[ForkedRuns]:
    runs = ForkedRuns(tiny_mnist_root, tmp_path)
    yield runs
    runs.close()


@dataclass(frozen=True)
class Kill:
    """When to kill one attempt. ``write``: inside its n-th checkpoint write (1: the epoch file,
    2: last.ckpt), ``fraction`` of the way in; ``boundary``: right after its first epoch's
    checkpoints; ``anywhere``: ``fraction`` of the usual time to the first write after start
    (start-up, steps, a write), but no later than a boundary."""

    kind: str
    fraction: float
    write: int = 0

    @property
    def advances(self) -> bool:
        """Whether a complete epoch checkpoint is left for the next attempt to start from."""
        return self.kind == "boundary" or (self.kind == "write" and self.write == 2)


def draw_kills(rng: random.Random) -> list[Kill]:
    kills = []
    for _ in range(KILLS):
        kind = rng.choice(("anywhere", "anywhere", "write", "write", "boundary"))
        fraction = rng.uniform(0.0, 0.9 if kind == "write" else 1.3)
        kills.append(Kill(kind, fraction, rng.choice((1, 2)) if kind == "write" else 0))
    return kills


def partial_files(run_dir: Path) -> set[str]:
    folder = run_dir / "checkpoints"
    try:
        return {name for name in os.listdir(folder) if name.endswith(PARTIAL_SUFFIX)}
    except FileNotFoundError:
        return set()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_when(
    pid: int, kill: Kill, run_dir: Path, first_write_after: float, stale: set[str]
) -> float:
    """Watch the attempt's checkpoint folder and SIGKILL it at the moment ``kill`` asks for;
    returns when its first write began (seconds after start) to time later attempts by.

    ``stale`` holds the temporary files an earlier killed write left, which are not this
    attempt's writes; it is updated as the attempt's clean-up removes them.
    """
    start = time.monotonic()
    deadline = start + 120  # a guard against a hung run, not a timing assertion
    writes, ended, writing, first_write = 0, 0, set(), first_write_after
    while alive(pid) and time.monotonic() < deadline:
        listing = partial_files(run_dir)
        stale &= listing  # once removed, a name is this attempt's own when it reappears
        now = listing - stale
        if now - writing:
            writes += 1
            if writes == 1:
                first_write = time.monotonic() - start
        ended += len(writing - now)
        writing = now
        elapsed = time.monotonic() - start
        if (
            # At most one epoch further per attempt, so the run cannot end before the last kill.
            (kill.kind in ("anywhere", "boundary") and ended >= 2)
            or (kill.kind == "anywhere" and elapsed >= kill.fraction * first_write_after)
            or (kill.kind == "write" and writes >= kill.write and writing)
        ):
            # Inside the write, or into the next epoch's first steps after a boundary.
            time.sleep(kill.fraction * (WRITE_DELAY if kill.kind == "write" else 0.05))
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    return first_write


@pytest.mark.slow
def test_random_hard_kills_never_leave_a_run_that_cannot_resume(
    tmp_path: Path, forked_runs: ForkedRuns
) -> None:
    kills = draw_kills(random.Random(SEED))
    # Enough epochs that the run cannot finish before the last kill, and a few more after it.
    epochs = sum(kill.advances or kill.kind == "anywhere" for kill in kills) + 3
    args = [*RUN, f"trainer.max_epochs={epochs}"]
    run_dir, logs = tmp_path / "killed", tmp_path / "logs"
    logs.mkdir()

    killed, in_write, first_write = 0, 0, 0.7
    for attempt, kill in enumerate(kills):
        # ckpt_path=last once the run folder exists (a run killed earlier did not create it).
        resume = ["ckpt_path=last"] if (run_dir / ".hydra").is_dir() else []
        stale = partial_files(run_dir)
        pid = forked_runs.start([*args, f"hydra.run.dir={run_dir}", *resume], logs / f"{attempt}")
        first_write = kill_when(pid, kill, run_dir, first_write, stale)
        status = forked_runs.wait()
        assert status == -signal.SIGKILL, (logs / f"{attempt}").read_text()[-3000:]
        killed += 1
        in_write += bool(partial_files(run_dir) - stale)  # the writer's file, left by the kill
    final = forked_runs.start([*args, f"hydra.run.dir={run_dir}", "ckpt_path=last"], logs / "end")
    assert forked_runs.wait() == 0, (logs / "end").read_text()[-3000:]
    print(f"\n{killed} kills survived, {in_write} of them inside a checkpoint write")
    assert final > 0 and killed == KILLS >= 20
    assert in_write > 0, "no kill landed inside a checkpoint write: the test lost its point"

    # Every file loads as plain data; the temporary files of killed writes are gone.
    checkpoints = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    assert {path.name for path in checkpoints} >= {"last.ckpt", f"epoch_{epochs - 1:03d}.ckpt"}
    for path in checkpoints:
        torch.load(path, map_location="cpu", weights_only=True)
    assert not partial_files(run_dir)

    # Every epoch ran, and exactly as in a run that was never killed.
    whole = tmp_path / "whole"
    forked_runs.start([*args, f"hydra.run.dir={whole}"], logs / "whole")
    assert forked_runs.wait() == 0, (logs / "whole").read_text()[-3000:]
    a = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    b = load_checkpoint(whole / "checkpoints" / "last.ckpt")
    assert a["epoch"] == epochs - 1
    assert_same_state(a, b)
    # TensorBoard: every point of the uninterrupted run and no step twice, whatever the killed
    # attempts had logged; only an epoch's averages, which Lightning logs just after its
    # checkpoint, are lost when a kill lands in between.
    killed_curves, whole_curves = scalar_curves(run_dir), scalar_curves(whole)
    assert killed_curves.keys() == whole_curves.keys()
    for tag, points in killed_curves.items():
        if tag.endswith("_epoch") or tag == "epoch":
            assert not Counter(points) - Counter(whole_curves[tag]), f"{tag}: a point twice"
        else:
            assert points == whole_curves[tag], tag


def test_a_full_disk_in_the_second_epoch_is_one_message_and_the_run_resumes(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir = tmp_path / "run"
    full = "trainer.plugins=[{_target_:reliability_helpers.DiskFullCheckpointIO,from_epoch:1}]"
    result = run_cli(
        [full, "trainer.max_epochs=3", f"hydra.run.dir={run_dir}"], tiny_mnist_root, tmp_path
    )
    checkpoints = run_dir / "checkpoints"
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout
    assert (
        f"RunFault: Saving the checkpoint {checkpoints / 'epoch_001.ckpt'} in epoch 1 failed: "
        "the disk is full (No space left on device)."
    ) in result.stdout
    assert (
        f"The last good checkpoint is {checkpoints / 'last.ckpt'} (the end of epoch 0)"
        in result.stdout
    )
    assert f"Free some space on the disk holding {run_dir}, then resume with:" in result.stdout
    assert f"hydra.run.dir={run_dir} ckpt_path=last" in result.stdout
    # Nothing half-written, no empty interrupted state: the epoch-0 files, whole.
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0

    # Space freed (the writer works again): the same folder resumes and finishes.
    train(compose_run(run_dir, tiny_mnist_root, ["trainer.max_epochs=3", "ckpt_path=last"]))
    assert load_checkpoint(checkpoints / "last.ckpt")["epoch"] == 2
