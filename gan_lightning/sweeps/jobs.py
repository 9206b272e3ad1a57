"""What a sweep job does for the sweep: share the CPU fairly, and record how it went.

Each job writes ``<job>/result.json`` (status, epochs done, wall time, the optimized metric's
value) whatever happened, so the summary reads the same files for any launcher, including ones
that run jobs in other processes or on other machines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gan_lightning.errors import expected_error

#: Written into every sweep job's folder when it ends, successfully or not.
RESULT_FILE = "result.json"
#: Written into a sweep job's folder when the job fails; read by the sweep summary.
FAILURE_FILE = "failure.txt"

log = logging.getLogger(__name__)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which SLURM and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def joblib_jobs(n_jobs: int, cores: int) -> int:
    """joblib's reading of ``n_jobs``: -1 is every core, -2 all but one, and so on."""
    return n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)


def threads_per_job(launcher: Any, cores: int | None = None) -> int | None:
    """Torch threads for one job of ``launcher`` (``hydra.launcher``); None: torch's default.

    joblib runs ``n_jobs`` jobs at once on this machine, so each gets ``cores // n_jobs``:
    torch's default (every core per job) would oversubscribe the CPU n_jobs times over. A
    submitit job gets the ``cpus_per_task`` it asked for, when it asked.
    """
    cores = cores or available_cores()
    target = str(launcher.get("_target_", "")) if launcher is not None else ""
    if target.endswith("JoblibLauncher"):
        return max(cores // joblib_jobs(int(launcher.get("n_jobs", -1)), cores), 1)
    if "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    return None


def set_job_threads(launcher: Any) -> int:
    """Apply :func:`threads_per_job` (inter-op threads: 1); returns the intra-op thread count."""
    threads = threads_per_job(launcher)
    if threads is not None:
        torch.set_num_threads(threads)
        # Settable once per process; a joblib worker that runs a second job already has it.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
    return torch.get_num_threads()


@dataclass
class JobRecord:
    """How far a job got; ``trainer`` is set by ``train`` once it exists."""

    started: float = field(default_factory=time.time)
    trainer: Any = None
    threads: int = 0

    @property
    def epochs_done(self) -> int:
        return 0 if self.trainer is None else int(self.trainer.current_epoch)

    @property
    def pruned_at_epoch(self) -> int | None:
        """The epochs trained when an Optuna pruner stopped the job (the pruning callback says
        so, gan_lightning/callbacks/pruning.py); None when none did."""
        callbacks = getattr(self.trainer, "callbacks", None) or []
        epochs = (getattr(callback, "pruned_at_epoch", None) for callback in callbacks)
        return next((epoch for epoch in epochs if epoch is not None), None)

    @property
    def is_global_zero(self) -> bool:
        return self.trainer is None or bool(self.trainer.is_global_zero)

    def write(
        self,
        job_dir: Path,
        *,
        status: str,
        metric: str,
        value: float,
        reason: str = "",
    ) -> None:
        """``status`` is ``ok``, ``failed`` or ``diverged`` (an ``ok`` job a pruner stopped is
        written ``pruned``); ``value`` the one returned to the sweeper (infinite for a failure,
        written as null: JSON has no infinity)."""
        if not self.is_global_zero:
            return
        if status == "ok" and self.pruned_at_epoch is not None:
            status = "pruned"
        ended = time.time()
        result = {
            "status": status,
            "reason": reason,
            "epochs": self.epochs_done,
            "wall_time_s": round(ended - self.started, 2),
            "optimized_metric": metric,
            "value": value if math.isfinite(value) else None,
            "torch_threads": self.threads,
            "pid": os.getpid(),
            "started": self.started,
            "ended": ended,
        }
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")


def record_failure(output_dir: Path, error: Exception) -> str:
    """Write why a sweep job failed where the sweep summary (and the user) will look for it;
    returns the one-line reason."""
    known = expected_error(error)
    reason = f"{type(known or error).__name__}: {known or error}"
    headline = " ".join(reason.split())  # the summary's one line per job
    details = reason if known else "".join(traceback.format_exception(error))
    text = headline if details == headline else f"{headline}\n\n{details}"
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / FAILURE_FILE).write_text(text + "\n")
    log.error("This sweep job failed (the others go on): %s", reason)
    return headline
