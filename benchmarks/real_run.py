"""A real training run of the CLI in a child process: its peak memory and its evaluation share.

The evaluation share is what ``metrics/time_share`` logs: time spent scoring the generator
during training over training time, under the default ``metrics.max_time_share`` budget. It
needs whole epochs (the budget compares against real epoch lengths) and the classifier.

For memory a child process is the only clean way: the benchmark's own process holds every
contestant's data and networks, so its peak says nothing about one run. The child's
``ru_maxrss`` (from ``wait4``) is no good either: Linux carries the parent's high-water mark
over into the child when it execs, so a 1 GiB benchmark process would make every child look
1 GiB large. The child therefore reports its own ``VmHWM`` (the peak RSS of the program it
became) as it exits.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gan_lightning.pictures import read_scalars

#: Runs ``python -m gan_lightning.train <overrides>`` and writes its VmHWM (KiB) to argv[1] at exit.
_CHILD = """
import atexit, runpy, sys

report = sys.argv[1]

def write_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(report, "w") as out:
        out.write(peak)

atexit.register(write_peak)
sys.argv = ["gan_lightning.train", *sys.argv[2:]]
runpy.run_module("gan_lightning.train", run_name="__main__", alter_sys=True)
"""


def train_run(
    overrides: list[str], epochs: int, batches: int | None = None
) -> dict[str, float | None]:
    """Peak RSS (MiB), wall time and evaluation share of ``python -m gan_lightning.train``.

    ``epochs`` whole epochs, or ``batches`` per epoch when given (a smoke test: the share is
    then meaningless). The share is ``None`` when the run had no classifier to evaluate with.
    """
    with tempfile.TemporaryDirectory(prefix="gan-bench-run-") as tmp:
        report = Path(tmp) / "vmhwm_kib.txt"
        limit = [] if batches is None else [f"++trainer.limit_train_batches={batches}"]
        command = [
            sys.executable,
            "-c",
            _CHILD,
            str(report),
            *overrides,
            f"trainer.max_epochs={epochs}",
            *limit,
            f"hydra.run.dir={Path(tmp) / 'run'}",
        ]
        start = time.perf_counter()
        run = subprocess.run(command, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - start
        if run.returncode != 0:
            tail = run.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(
                f"`python -m gan_lightning.train {' '.join(command[4:])}` failed; "
                f"the end of its stderr:\n{tail}"
            )
        peak_kib = int(report.read_text())
        shares = read_scalars(Path(tmp) / "run" / "tensorboard").get("metrics/time_share")
    return {
        "epochs": epochs,
        "peak_rss_mib": peak_kib / 1024,
        "wall_s": wall,
        # The last value: the share over the whole run, final evaluation excluded.
        "eval_time_share": shares[1][-1] if shares else None,
    }
