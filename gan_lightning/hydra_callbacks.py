"""Hydra callbacks (``hydra.callbacks`` in conf/hydra/default.yaml) that guard run folders.

They run in the launching process, before Hydra writes anything into a run folder (its
``.hydra/`` copy of the config and the log file) and after a sweep's last job:

* :class:`RunFolderCheck` refuses a read-only or full output location and a folder that already
  holds a run (unless resuming), so an old run's files are never overwritten;
* :class:`SweepSummary` prints which sweep jobs succeeded and which failed, and why.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lightning.train import FAILURE_FILE, RunError, ensure_writable, resolve_ckpt_path


def _folder(config: DictConfig, key: str) -> Path:
    # The folder keys interpolate ${hydra:runtime.cwd}, readable once the Hydra config is set.
    HydraConfig.instance().set_config(config)
    return Path(config.hydra[key].dir).resolve()


def _refuse(error: RunError) -> NoReturn:
    # Hydra turns exceptions raised in callbacks into warnings and goes on; exiting is the only
    # way to stop before it writes into the folder.
    sys.exit(f"RunError: {error}")


class RunFolderCheck(Callback):
    """Checks the run (or sweep) folder before Hydra creates or writes into it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = _folder(config, "run")
        try:
            resolve_ckpt_path(config.get("ckpt_path"), run_dir)
            ensure_writable(run_dir)
        except RunError as error:
            _refuse(error)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = _folder(config, "sweep")
        existing = sorted(sweep_dir.glob("**/checkpoints/*.ckpt"))
        try:
            if existing and config.get("ckpt_path") is None:
                raise RunError(
                    f"the sweep folder {sweep_dir} already holds runs ({existing[0]}); nothing "
                    "is overwritten. Resume the sweep with the same command plus ckpt_path=last, "
                    "or leave hydra.sweep.dir unset to get a fresh timestamped folder."
                )
            ensure_writable(sweep_dir)
        except RunError as error:
            _refuse(error)


def job_results(sweep_dir: Path) -> list[tuple[str, str]]:
    """(job folder relative to the sweep, failure reason or "") for every job of a sweep."""
    results = []
    for hydra_dir in sorted(sweep_dir.glob("**/.hydra")):
        job_dir = hydra_dir.parent
        failure = job_dir / FAILURE_FILE
        reason = failure.read_text().splitlines()[0] if failure.is_file() else ""
        results.append((str(job_dir.relative_to(sweep_dir)), reason))
    return results


class SweepSummary(Callback):
    """After a sweep, one table: each job, whether it succeeded, and why it failed.

    Reads the job folders rather than collecting results in memory, so it works for any
    launcher, including ones that run jobs in other processes. Plain text, one job per line,
    so it reads the same in a terminal, a log file and a CI page.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print(summary_table(_folder(config, "sweep")), flush=True)


def summary_table(sweep_dir: Path) -> str:
    results = job_results(sweep_dir)
    failed = sum(1 for _, reason in results if reason)
    width = max((len(job) for job, _ in results), default=3)
    lines = [
        f"Sweep {sweep_dir}: {len(results) - failed} succeeded, {failed} failed"
        + (f" (details in <job>/{FAILURE_FILE})" if failed else ""),
        f"  {'job':<{width}}  result  why",
    ]
    lines += [
        f"  {job:<{width}}  {'FAILED' if reason else 'ok':<6}  {_shorten(reason)}".rstrip()
        for job, reason in results
    ]
    return "\n".join(lines)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
