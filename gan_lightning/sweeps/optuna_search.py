"""The stored state of an Optuna search (``hparams_search=optuna``), read without the sweeper.

The sweeper itself (``hydra_plugins/gan_lightning_optuna/sweeper.py``) resumes a killed search;
the sweep checks use :func:`finished_trials` to refuse one that already finished. Optuna is
imported only when a study is opened: it is an optional dependency (the ``sweeps`` extra).
"""

from __future__ import annotations

from typing import Any

#: The sweeper class ``conf/hparams_search/optuna.yaml`` names.
SWEEPER = "hydra_plugins.gan_lightning_optuna.sweeper.ResumableOptunaSweeper"


def load_study(storage: Any, study_name: str | None) -> Any:
    """The stored study, or None when there is none yet (or it lives in memory)."""
    import optuna

    if storage is None or study_name is None:
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no study of that name yet
        return None


def ended_trials(study: Any) -> list[Any]:
    """Trials that completed, were pruned or failed (not those still RUNNING)."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return study.get_trials(deepcopy=False, states=states)


def finished_trials(storage: Any, study_name: str | None) -> int:
    """How many trials of the stored study ended."""
    study = load_study(storage, study_name)
    return 0 if study is None else len(ended_trials(study))
