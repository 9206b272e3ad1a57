"""Where an Optuna search (``hparams_search=optuna``) keeps its study, and what is stored there.

``hydra.sweeper.storage`` is read the way ``optuna-dashboard <storage>`` reads it, so the same
string opens the search in both: a URL (``sqlite:///...``, ``postgresql://...``, anything
SQLAlchemy takes) is a database, anything else a journal file (created on first use). The
default, ``<search folder>/optuna.journal``, is Optuna's journal storage: safe with several
processes appending at once (SQLite is not, optuna#4002), and readable by the dashboard.

The sweep checks (:mod:`gan_lightning.hydra_callbacks`) read a stored study before any job starts,
so Optuna is imported only when a study is opened: it is an optional dependency (the ``sweeps``
extra), and Hydra imports this module for every command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gan_lightning.errors import RunError

#: The sweeper class ``conf/hparams_search/optuna.yaml`` names (``hydra.sweeper._target_``).
SWEEPER = "hydra_plugins.gan_lightning_optuna.sweeper.GanOptunaSweeper"

#: ``scheme://``: what makes a storage string a database URL rather than a journal file.
_URL = re.compile(r"^[A-Za-z][\w+.-]*://")


def is_database_url(storage: str) -> bool:
    return _URL.match(storage) is not None


def shown_storage(storage: str) -> str:
    """``storage`` for a message or a log: a database URL without its password."""
    if not is_database_url(storage):
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not even a URL SQLAlchemy can parse: show it as given
        return storage


def open_storage(storage: str) -> Any:
    """The Optuna storage ``storage`` names (see the module docstring); a :class:`RunError`
    naming ``hydra.sweeper.storage`` and the fix when it cannot be opened."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    try:
        if is_database_url(storage):
            return optuna.storages.RDBStorage(storage)
        path = Path(storage).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except Exception as error:  # SQLAlchemy's, the driver's and the file system's own errors
        reason = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        raise RunError(
            f"hydra.sweeper.storage={shown_storage(storage)} cannot be opened ({reason}). Give a "
            "journal file in a folder you can write, or a database URL "
            "Optuna accepts (sqlite:///<file>, postgresql://<user>@<host>/<db>, ...) with its "
            "driver installed and the server running; leave it unset for the default, "
            "<search folder>/optuna.journal."
        ) from error


def load_study(storage: str | None, study_name: str | None) -> Any:
    """The stored study, or None when there is none yet (a journal file that does not exist is
    not created)."""
    import optuna

    if storage is None or study_name is None:
        return None
    if not is_database_url(storage) and not Path(storage).expanduser().is_file():
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:  # no study of that name yet
        return None


def ended_trials(study: Any) -> list[Any]:
    """Trials that completed, were pruned or failed (not those still running)."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return study.get_trials(deepcopy=False, states=states)


def finished_trials(storage: str | None, study_name: str | None) -> int:
    """How many trials of the stored study ended."""
    study = load_study(storage, study_name)
    return 0 if study is None else len(ended_trials(study))


def direction_problem(study: Any, direction: str, metric: str) -> str | None:
    """A stored study that optimizes the other way than ``optimized_metric`` asks."""
    stored = [d.name.lower() for d in study.directions]
    if stored == [direction]:
        return None
    return (
        f"the study {study.study_name} in its storage was made to {' and '.join(stored)}, but "
        f"optimized_metric={metric} is to {direction}, so its trials cannot be compared. Start "
        "a new study for this metric with hydra.sweeper.study_name=<new name>, or set "
        "optimized_metric back to the metric the study was made for."
    )
