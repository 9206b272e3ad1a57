"""``hparams_search=optuna``: the Hydra Optuna sweeper, made to resume a killed search.

The plugin already loads an existing study from its storage (``load_if_exists``), but then
runs ``n_trials`` more trials, numbers the jobs from 0 again and leaves the trial that was
running when the search was killed as RUNNING forever. This subclass makes ``n_trials`` the
size of the whole search: the same command after a kill marks the killed trial failed, runs
only the trials still missing, and numbers their jobs after the ones already in the folder.

Hydra imports every module of ``hydra_plugins`` at start-up, so this one must import without
the optional Optuna plugin (``pip install -e ".[sweeps]"``) and stay cheap to import.
"""

from __future__ import annotations

import logging

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the sweep plugins are not installed: nothing to register
    OptunaSweeper = None

from gan_lightning.sweeps.optuna_search import ended_trials, load_study

log = logging.getLogger(__name__)
# Optuna's SQLite storage runs alembic migrations, which log every plugin they load at INFO.
logging.getLogger("alembic").setLevel(logging.WARNING)

if OptunaSweeper is not None:

    class ResumableOptunaSweeper(OptunaSweeper):
        """:class:`OptunaSweeper` whose ``n_trials`` counts the trials already in its storage."""

        def sweep(self, arguments: list[str]) -> None:
            from optuna.trial import TrialState

            impl = self.sweeper
            study = load_study(impl.storage, impl.study_name)
            if study is not None:
                killed = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                for trial in killed:  # one process asks and tells: RUNNING means killed
                    study.tell(trial.number, state=TrialState.FAIL)
                done = len(ended_trials(study))
                impl.n_trials = max(impl.n_trials - done, 0)
                impl.job_idx = len(study.trials)  # job folders continue the trial numbers
                # A fresh stream: replaying the seed would propose the first trials again.
                impl.sampler.reseed_rng()
                log.info(
                    "Resuming study %s: %d trials done (%d killed, now failed), %d to go",
                    impl.study_name,
                    done,
                    len(killed),
                    impl.n_trials,
                )
            super().sweep(arguments)
