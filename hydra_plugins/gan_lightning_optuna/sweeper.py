"""``hparams_search=optuna``: a Hydra sweeper on Optuna 5's ask-and-tell interface.

Each round asks the study for as many trials as the launcher runs at once (``n_jobs``), launches
them as one batch of Hydra jobs (each gets its sampled overrides and ``optuna.trial=<number>``,
and its folder is ``trial_<number>``), and tells Optuna how each ended: COMPLETE with the value
the job returned, PRUNED when the job's pruning callback stopped it, FAIL when the job failed or
diverged (it returns an infinite value) or raised. The search goes on after a failure.

``n_trials`` is the size of the whole study, so the same command resumes a killed search (the
killed trials count as failed) and a second process started on the same study name and storage
shares the work: each asks for trials until the study holds ``n_trials``
(:mod:`gan_lightning.sweeps.optuna_workers` keeps them from overlapping and finds trials whose
process died). Everything that can be refused is refused before the first trial starts: an
unknown sampler or pruner, a search space Optuna cannot sample, a storage that cannot be opened,
and a stored study that optimizes the other way.

Optuna is imported when a sweep starts, never when Hydra imports this module at start-up.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from gan_lightning.errors import ConfigError, GanLightningError

log = logging.getLogger(__name__)


def parallel_jobs(launcher: DictConfig) -> int:
    """How many jobs ``launcher`` (``hydra.launcher``) runs at once: joblib's ``n_jobs``,
    submitit's ``array_parallelism``, one for Hydra's basic launcher."""
    from gan_lightning.sweeps.jobs import available_cores, joblib_jobs

    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        return joblib_jobs(int(launcher.get("n_jobs", -1)), available_cores())
    if "submitit" in target:
        return max(int(launcher.get("array_parallelism") or 1), 1)
    return 1


class SearchPlan(NamedTuple):
    """What a sweep asks of its study, settled before the first trial. (A NamedTuple: Hydra
    loads plugin modules without registering them in sys.modules, which dataclasses need.)"""

    space: Any  # gan_lightning.sweeps.optuna_space.SearchSpace
    grid: dict[str, list[Any]] | None  # every value of every key, for sampler=grid
    n_trials: int  # the study's size (a grid's size when smaller)
    n_jobs: int  # trials asked for at once
    storage: Any  # the opened Optuna storage


class GanOptunaSweeper(Sweeper):
    """The settings are ``hydra.sweeper`` (``config.py`` lists and explains them)."""

    def __init__(
        self,
        study_name: str | None,
        storage: str | None,
        direction: str,
        n_trials: int,
        n_jobs: int | None,
        sampler: str,
        seed: int | None,
        n_startup_trials: int,
        pruner: str,
        min_epochs: int,
        params: dict[str, Any] | None,
    ) -> None:
        self.study_name = study_name
        self.storage = storage
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.sampler = sampler
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.pruner = pruner
        self.min_epochs = min_epochs
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self._metric = "the value"

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        try:
            import optuna  # noqa: F401
        except ImportError:
            from gan_lightning.sweeps.preflight import INSTALL_HINT

            raise CompactHydraException(
                f"RunError: hparams_search=optuna needs Optuna, which is not installed. Install "
                f"the sweep packages (pinned to versions that work together) with `{INSTALL_HINT}`."
            ) from None
        try:
            self._sweep(arguments)
        except GanLightningError as error:  # refused before (or between) trials: one paragraph
            raise CompactHydraException(f"{type(error).__name__}: {error}") from error

    # ------------------------------------------------------------------ the search
    def _check_settings(self) -> None:
        from gan_lightning.sweeps.optuna_factories import check_names

        check_names(self.sampler, self.pruner)
        if self.direction not in ("minimize", "maximize"):
            raise ConfigError(
                f"hydra.sweeper.direction={self.direction} must be minimize or maximize; leave it "
                "to optimized_metric (conf/hparams_search/optuna.yaml reads it from there)."
            )
        if self.storage is None or self.study_name is None:
            raise ConfigError(
                "hydra.sweeper.storage and hydra.sweeper.study_name must both be set: the trials' "
                "jobs report to the study there, and a killed search resumes from it. Leave them "
                "at hparams_search=optuna's defaults (<search folder>/optuna.journal, the model's "
                "name) or give a journal file or database URL and a name."
            )
        for name, value, least in (
            ("n_trials", self.n_trials, 1),
            ("n_jobs", self.n_jobs, 1),
            ("n_startup_trials", self.n_startup_trials, 0),
            ("min_epochs", self.min_epochs, 0),
        ):
            if value is not None and value < least:
                raise ConfigError(f"hydra.sweeper.{name}={value} must be an integer >= {least}.")
        assert self.config is not None
        if "trial" not in (self.config.get("optuna") or {}):
            raise ConfigError(
                "hydra/sweeper=gan_optuna gives each job its trial as optuna.trial=<number>, a key "
                "this config does not have; run searches with hparams_search=optuna, which adds "
                "it (and the pruning callback)."
            )

    def _sweep(self, arguments: list[str]) -> None:
        from gan_lightning.sweeps.optuna_search import open_storage, shown_storage
        from gan_lightning.sweeps.optuna_space import grid_size, parse_search_space
        from gan_lightning.sweeps.optuna_workers import Worker

        assert self.config is not None
        self._check_settings()
        space = parse_search_space(self.params, arguments)
        if not space.distributions:
            raise ConfigError(
                "the search space is empty: nothing in hydra.sweeper.params or on the command "
                "line is a choice(...), range(...) or interval(...). Add one, or run the jobs "
                "without hparams_search=optuna."
            )
        grid = space.grid() if self.sampler == "grid" else None
        n_trials = self.n_trials
        if grid is not None and grid_size(grid) < n_trials:
            n_trials = grid_size(grid)
            log.info("The grid has %d points: the search stops after %d trials", n_trials, n_trials)
        storage = open_storage(str(self.storage))
        study = self._open_study(storage)
        n_jobs = self.n_jobs or parallel_jobs(self.config.hydra.launcher)
        plan = SearchPlan(space, grid, n_trials, n_jobs, storage)

        with Worker(Path(self.config.hydra.sweep.dir) / "workers") as worker:
            with worker.exclusive():
                dead = worker.fail_dead_trials(study)
                so_far = len(study.trials)
            log.info(
                "Study %s (%s): %d of %d trials asked for so far%s; %d trials at a time",
                self.study_name,
                shown_storage(str(self.storage)),
                so_far,
                n_trials,
                f" ({len(dead)} killed with their process, now failed)" if dead else "",
                n_jobs,
            )
            while trials := self._ask_batch(worker, study, plan):
                self._run_batch(study, space, trials)

    def _open_study(self, storage: Any) -> Any:
        """The study, created on first use; refused if stored for the other direction."""
        import optuna

        from gan_lightning.sweeps.optuna_factories import make_pruner
        from gan_lightning.sweeps.optuna_search import direction_problem

        assert self.config is not None
        pruner = make_pruner(
            self.pruner, n_startup_trials=self.n_startup_trials, min_epochs=self.min_epochs
        )
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            direction=self.direction,
            pruner=pruner,
            load_if_exists=True,
        )
        self._metric = str(self.config.get("optimized_metric"))
        problem = direction_problem(study, self.direction, self._metric)
        if problem:
            raise ConfigError(problem)
        with warnings.catch_warnings():  # experimental in Optuna 5, stable in what it stores
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # The dashboard labels the objective with it ("metrics/fid", not "Objective 0").
            study.set_metric_names([self._metric])
        return study

    def _ask_batch(self, worker: Any, study: Any, plan: SearchPlan) -> list[Any]:
        """Up to ``plan.n_jobs`` new trials while the study holds fewer than ``plan.n_trials``
        (dead workers' trials failed first); none once the study is full."""
        import optuna

        from gan_lightning.sweeps.optuna_factories import make_sampler

        with worker.exclusive():
            worker.fail_dead_trials(study)
            so_far = len(study.trials)
            count = min(plan.n_jobs, plan.n_trials - so_far)
            if count <= 0:
                return []
            # A study object per batch: its sampler is seeded for these trials.
            sampler = make_sampler(
                self.sampler,
                seed=self.seed,
                n_startup_trials=self.n_startup_trials,
                trials_so_far=so_far,
                grid=plan.grid,
            )
            batch_study = optuna.load_study(
                study_name=study.study_name,
                storage=plan.storage,
                sampler=sampler,
                pruner=study.pruner,
            )
            return worker.ask(batch_study, plan.space.distributions, count)

    def _run_batch(self, study: Any, space: Any, trials: list[Any]) -> None:
        """Launch ``trials`` as one batch of jobs and tell Optuna how each ended."""
        from optuna.trial import TrialState

        batch = job_overrides(space, trials)
        try:
            self.validate_batch_is_legal(batch)
        except Exception:  # a trial's config does not compose: none of them ran
            for trial in trials:
                study.tell(trial.number, state=TrialState.FAIL)
            raise
        returns = self.launcher.launch(batch, initial_job_idx=trials[0].number)
        stored = study.get_trials(deepcopy=False)  # with what the jobs wrote
        for trial, job in zip(trials, returns, strict=True):
            self._tell(study, stored[trial.number], job)

    def _tell(self, study: Any, trial: Any, job: JobReturn) -> None:
        """Tell Optuna how ``trial``'s job ended (see the module docstring); ``trial`` as
        stored after the job, with the attributes its pruning callback set."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        from gan_lightning.sweeps.optuna_trial import PRUNED_AT

        value = job.return_value if job.status == JobStatus.COMPLETED else None
        if trial.user_attrs.get(PRUNED_AT) is not None:
            state, values = TrialState.PRUNED, None
        elif isinstance(value, int | float) and math.isfinite(value):
            state, values = TrialState.COMPLETE, float(value)
        else:
            state, values = TrialState.FAIL, None
            if job.status != JobStatus.COMPLETED:
                log.warning("Trial %d failed: its job raised an error", trial.number)
        try:
            study.tell(trial.number, values, state=state)
        except UpdateFinishedTrialError:
            log.warning("Trial %d was already ended by another worker; not told", trial.number)
            return
        if state == TrialState.COMPLETE:
            log.info("Trial %d: %s %.4g", trial.number, self._metric, values)
        elif state == TrialState.PRUNED:
            log.info("Trial %d: pruned after epoch %s", trial.number, trial.user_attrs[PRUNED_AT])
        else:
            log.info("Trial %d: failed (its folder's failure.txt says why)", trial.number)


def job_overrides(space: Any, trials: Sequence[Any]) -> list[tuple[str, ...]]:
    """Each trial's overrides: its sampled values and ``optuna.trial=<number>``."""
    return [(*space.overrides(t.params), f"optuna.trial={t.number}") for t in trials]
