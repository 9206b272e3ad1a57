"""A sweep job's side of its Optuna trial: report each evaluation, ask the pruner, say it stopped.

The sweeper created the trial and will tell Optuna how it ended; the job, often in another
process or on another machine, only adds what it learns while training: the metric after each
evaluation (the trial's intermediate values, which the pruner and the dashboard read) and, when
the pruner stops it, the epoch it stopped after (the ``pruned_at_epoch`` user attribute, which
the sweeper reads to tell Optuna PRUNED). Only Optuna's public storage and pruner interfaces are
used, so any storage the sweeper can open works here too.
"""

from __future__ import annotations

import logging

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.pruners import BasePruner

from gan_lightning.sweeps.optuna_search import open_storage

#: The trial user attribute a pruned job sets: the epochs it trained.
PRUNED_AT = "pruned_at_epoch"

log = logging.getLogger(__name__)


class TrialReporter:
    """Trial ``number`` of the study ``study_name`` in ``storage``, judged by ``pruner``."""

    def __init__(self, storage: str, study_name: str, number: int, pruner: BasePruner) -> None:
        self.storage = open_storage(storage)
        self.study = optuna.load_study(study_name=study_name, storage=self.storage, pruner=pruner)
        study_id = self.storage.get_study_id_from_name(study_name)
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        self.number = number
        self.pruner = pruner
        self.open = True  # False once someone else ended the trial: reports would be refused

    def report(self, value: float, epoch: int, *, may_prune: bool) -> bool:
        """Store ``value`` as the trial's value after ``epoch`` epochs; returns whether the
        pruner stops the trial here (only asked when ``may_prune``)."""
        if not self.open:
            return False
        try:
            self.storage.set_trial_intermediate_value(self.trial_id, epoch, value)
        except UpdateFinishedTrialError:
            # The sweeper that asked for it is gone and another worker failed the trial.
            log.warning("Trial %d was ended by another process; no more reports", self.number)
            self.open = False
            return False
        if not may_prune:
            return False
        return self.pruner.prune(self.study, self.storage.get_trial(self.trial_id))

    def mark_pruned(self, epoch: int) -> None:
        """Leave the sweeper the news that the pruner stopped this trial after ``epoch``."""
        if self.open:
            self.storage.set_trial_user_attr(self.trial_id, PRUNED_AT, epoch)
