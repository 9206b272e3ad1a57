"""``hparams_search=optuna``: the Hydra Optuna sweeper, made to resume a killed search.

The plugin already loads an existing study from its storage (``load_if_exists``), but then
runs ``n_trials`` more trials, numbers the jobs from 0 again and leaves the trial that was
running when the search was killed as RUNNING forever. This subclass makes ``n_trials`` the
size of the whole search: the same command after a kill marks the killed trial failed, runs
only the trials still missing, and numbers their jobs after the ones already in the folder.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)


def _load_study(storage: Any, study_name: str | None) -> Any:
    import optuna

    if storage is None or study_name is None:
        return None  # in memory: nothing to resume
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no study of that name yet
        return None


def _ended(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return study.get_trials(deepcopy=False, states=states)


def finished_trials(storage: Any, study_name: str | None) -> int:
    """How many trials of the stored study ended (completed, pruned or failed)."""
    study = _load_study(storage, study_name)
    return 0 if study is None else len(_ended(study))


class ResumableOptunaSweeper(OptunaSweeper):
    """:class:`OptunaSweeper` whose ``n_trials`` counts the trials already in its storage."""

    def sweep(self, arguments: list[str]) -> None:
        from optuna.trial import TrialState

        impl = self.sweeper
        study = _load_study(impl.storage, impl.study_name)
        if study is not None:
            killed = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            for trial in killed:  # single-process sweeper: a RUNNING trial is a killed one
                study.tell(trial.number, state=TrialState.FAIL)
            done = len(_ended(study))
            impl.n_trials = max(impl.n_trials - done, 0)
            impl.job_idx = len(study.trials)  # job folders continue the trial numbers
            # A fresh stream: replaying the seed would propose the first trials' values again.
            impl.sampler.reseed_rng()
            log.info(
                "Resuming study %s: %d trials done (%d killed, counted as failed), %d to go",
                impl.study_name,
                done,
                len(killed),
                impl.n_trials,
            )
        super().sweep(arguments)
