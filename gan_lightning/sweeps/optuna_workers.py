"""Several sweep processes on one study: who runs which trial, and whose trials died with them.

Each sweep process (a *worker*) holds an exclusive ``fcntl.flock`` on its own file in
``<search folder>/workers/`` for as long as it lives; the operating system releases it when the
process ends, even by ``kill -9``. Every trial a worker asks for carries its name (the trial's
``worker`` user attribute, which the dashboard shows). A RUNNING trial whose worker's file can
be locked by someone else belongs to a dead worker: it is marked failed, and the search runs
another in its place. A live worker's running trials are left alone.

Optuna's own answer, heartbeats (``fail_stale_trials``), exists only for database storages,
not for the journal file this project uses by default; a lock held for a process's lifetime
also needs no clock, no grace period and no thread.

Asking is serialized with a second lock (``workers/study.lock``), so two workers never both
take the last trial of ``n_trials``, and a check for dead workers never sees a trial between
its creation and its owner's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, Trial, TrialState

#: The trial user attribute that names the worker running it.
OWNER = "worker"

log = logging.getLogger(__name__)


def _try_lock(file: IO[bytes]) -> bool:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Worker:
    """This sweep process on a study whose workers register in ``folder``.

    Use it as a context manager: inside, the process is registered (and alive to the others).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._file: IO[bytes] | None = None

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.lock"

    def __enter__(self) -> Worker:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = self._path(self.name).open("wb")
        fcntl.flock(self._file, fcntl.LOCK_EX)  # a new file: nobody else can hold it
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._file is not None
        self._path(self.name).unlink(missing_ok=True)
        self._file.close()  # releases the lock
        self._file = None

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the study's lock: one worker at a time counts, asks for and fails trials."""
        with (self.folder / "study.lock").open("wb") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)

    def is_alive(self, name: str) -> bool:
        """Whether the worker ``name`` still holds its lock (call it inside :meth:`exclusive`)."""
        if name == self.name:
            return True
        path = self._path(name)
        try:
            file = path.open("rb")
        except FileNotFoundError:  # it ended and cleaned up, or it was another folder's
            return False
        with file:
            if not _try_lock(file):
                return True
            path.unlink(missing_ok=True)  # a dead worker's leftover
            return False

    def fail_dead_trials(self, study: Study) -> list[FrozenTrial]:
        """Mark failed every RUNNING trial whose worker is gone (or that names none: asked by
        hand, or by a search from before workers had names); returns them."""
        dead = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = trial.user_attrs.get(OWNER)
            if owner is None or not self.is_alive(str(owner)):
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                dead.append(trial)
        return dead

    def ask(
        self, study: Study, distributions: dict[str, BaseDistribution], count: int
    ) -> list[Trial]:
        """``count`` new trials of ``study``, sampled from ``distributions``, named as ours
        (call it inside :meth:`exclusive`)."""
        trials = []
        for _ in range(count):
            trial = study.ask(fixed_distributions=distributions)
            trial.set_user_attr(OWNER, self.name)
            trials.append(trial)
        return trials
