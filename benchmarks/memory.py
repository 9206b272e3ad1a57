"""Peak resident memory of a real training run, measured on the CLI itself in a child process.

A child process is the only clean way: the benchmark's own process holds every contestant's
data and networks, so its peak says nothing about one run. The child's ``ru_maxrss`` (from
``wait4``) is no good either: Linux carries the parent's high-water mark over into the child
when it execs, so a 1 GiB benchmark process would make every child look 1 GiB large. The child
therefore reports its own ``VmHWM`` (the peak RSS of the program it became) as it exits.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def train_run_peak_rss(overrides: list[str], batches: int) -> dict[str, float]:
    """Peak RSS (MiB) and wall time of ``python -m gan_lightning.train`` for ``batches`` batches."""
    with tempfile.TemporaryDirectory(prefix="gan-bench-rss-") as tmp:
        report = Path(tmp) / "vmhwm_kib.txt"
        command = [
            sys.executable,
            "-c",
            _CHILD,
            str(report),
            *overrides,
            "trainer.max_epochs=1",
            f"++trainer.limit_train_batches={batches}",
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
    return {"peak_rss_mib": peak_kib / 1024, "wall_s": wall}
