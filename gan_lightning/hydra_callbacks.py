"""Hydra callbacks (``hydra.callbacks`` in conf/hydra/default.yaml) that guard run folders.

They run in the launching process, before Hydra writes anything into a run folder (its
``.hydra/`` copy of the config and the log file) and after a sweep's last job:

* :class:`RunFolderCheck` prepares a single run's folder (:mod:`gan_lightning.runs.folder`:
  held by this process for the run's life, writable, no old run's unless resuming), so neither
  a run still going nor an old run's files are written over; before a sweep it refuses what
  would fail or misbehave in every job (:mod:`gan_lightning.sweeps.preflight`) and a sweep
  folder that already holds runs (each job prepares its own folder as it starts);
* :class:`SweepSummary` writes the sweep's answer: ``summary.csv`` and ``summary.md``, one row
  per job sorted by ``optimized_metric``, the same table in the terminal, and the best job as
  a command to paste.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console

from gan_lightning.errors import RunError
from gan_lightning.runs.folder import ensure_writable, prepare, release
from gan_lightning.sweeps import optuna_search, preflight, summary
from gan_lightning.sweeps.jobs import FAILURE_FILE


def _folder(config: DictConfig, key: str) -> Path:
    # The folder keys interpolate ${hydra:runtime.cwd}, readable once the Hydra config is set.
    HydraConfig.instance().set_config(config)
    return Path(config.hydra[key].dir).resolve()


def _refuse(error: RunError) -> NoReturn:
    # Hydra turns exceptions raised in callbacks into warnings and goes on; exiting is the only
    # way to stop before it writes into the folder.
    sys.exit(f"RunError: {error}")


class RunFolderCheck(Callback):
    """Prepares a single run's folder, and checks a sweep's, before Hydra writes into them."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # ``train`` finds the folder prepared; the hold lasts until on_run_end.
        self.run_dir = _folder(config, "run")
        try:
            prepare(self.run_dir, config.get("ckpt_path"))
        except RunError as error:
            release(self.run_dir)
            _refuse(error)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        release(self.run_dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = _folder(config, "sweep")
        problem = (
            preflight.sweep_distributed_problem(config)
            or preflight.launcher_problem(config)
            or preflight.search_space_problem(config)
            or preflight.objective_problem(config)
        )
        try:
            if problem:
                raise RunError(problem)
            _check_sweep_folder(config, sweep_dir)
            ensure_writable(sweep_dir)
        except RunError as error:
            _refuse(error)


def _check_sweep_folder(config: DictConfig, sweep_dir: Path) -> None:
    """A finished sweep is never run over; a stopped one only resumes when asked to."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") == optuna_search.SWEEPER:
        stored = sweep_dir.is_dir()  # opening the storage would create its folder
        done = optuna_search.finished_trials(sweeper.storage, sweeper.study_name) if stored else 0
        if done >= sweeper.n_trials:
            raise RunError(
                f"the search {sweeper.study_name} in {sweep_dir} already finished its "
                f"{done} trials (hydra.sweeper.n_trials={sweeper.n_trials}); nothing is "
                "overwritten. Run more trials of it with a larger hydra.sweeper.n_trials, or "
                "start a new search with hydra.sweeper.study_name=<new name>."
            )
        return  # an unfinished study resumes: new trials get new folders
    if config.get("ckpt_path") is not None:
        return  # resuming each job in its own folder, as asked
    if (sweep_dir / "summary.csv").is_file():
        raise RunError(
            f"the sweep folder {sweep_dir} already holds a finished sweep (summary.csv); "
            "nothing is overwritten. Leave hydra.sweep.dir unset to get a fresh timestamped "
            "folder, or add ckpt_path=last to continue its jobs (e.g. with more epochs)."
        )
    existing = sorted(sweep_dir.glob("**/checkpoints/*.ckpt"))
    if existing:
        raise RunError(
            f"the sweep folder {sweep_dir} already holds runs ({existing[0]}); nothing "
            "is overwritten. Resume the sweep with the same command plus ckpt_path=last, "
            "or leave hydra.sweep.dir unset to get a fresh timestamped folder."
        )


class SweepSummary(Callback):
    """After a sweep, its answer in one table, in the sweep folder and in the terminal."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = _folder(config, "sweep")
        metric = config.get("optimized_metric") or "metrics/fid"
        rows = summary.write_summary(sweep_dir, metric)
        print(summary.headline(rows, sweep_dir), flush=True)
        Console().print(summary.rich_table(rows, metric, sweep_dir))
        failed = [row for row in rows if not (row.ok or row.pruned)]
        if failed:
            print(f"Why each job failed: <job>/{FAILURE_FILE}", flush=True)
        print(f"Table: {sweep_dir / 'summary.md'} (every column: summary.csv)", flush=True)
        command = summary.best_command(rows)
        if command:
            print(f"Best by {metric}; train it again as a single run with:\n  {command}")
        elif rows:
            print(f"No job has a value of {metric} (is metrics.classifier_ckpt there?)")
        sys.stdout.flush()
