"""Stop a search's hopeless trials early: report each evaluation to Optuna, stop when pruned.

``hparams_search=optuna`` adds this callback to every trial's job (``callbacks.optuna_pruning``);
the sweeper sets ``optuna.trial`` per job, and storage, study and pruner come from its own
settings. After each epoch whose end evaluated the metrics (``callbacks.generative_metrics``), it
stores ``optimized_metric`` as the trial's value after that many epochs and asks the pruner
whether the trial can still win. A pruned job stops the way Lightning stops any run,
``trainer.should_stop``: this epoch's checkpoint is written, the end-of-fit callbacks run, and
the job records ``pruned`` in its ``result.json`` (``pruned_at_epoch`` below, read by
:class:`~gan_lightning.sweeps.jobs.JobRecord`).

optuna-integration's ``PyTorchLightningPruningCallback`` is not used: it imports
``lightning.pytorch`` (this project is on ``pytorch_lightning``, and the two namespaces' classes
do not mix), reports from the validation loop (a GAN here has none), and raises
``TrialPruned`` out of ``fit`` instead of ending the run cleanly.
"""

from __future__ import annotations

import logging
import math

import pytorch_lightning as pl

from gan_lightning.callbacks.metrics import GenerativeMetrics
from gan_lightning.errors import ConfigError
from gan_lightning.sweeps.optuna_factories import make_pruner
from gan_lightning.sweeps.optuna_trial import TrialReporter

log = logging.getLogger(__name__)


class OptunaPruning(pl.Callback):
    """Reports ``metric`` of trial ``trial`` after each evaluation; stops the run when pruned.

    Args:
        storage: the study's storage (``hydra.sweeper.storage``).
        study_name: ``hydra.sweeper.study_name``.
        trial: the trial number this job runs (``optuna.trial``, set by the sweeper); None (a
            job not started by the sweeper) turns the callback off.
        metric: ``optimized_metric``, as the metrics callback logs it (``metrics/fid``).
        pruner: ``hydra.sweeper.pruner`` (median, hyperband, none).
        n_startup_trials: trials that finish before the median pruner stops any.
        min_epochs: epochs every trial trains before it may be stopped.
    """

    def __init__(
        self,
        storage: str | None,
        study_name: str | None,
        trial: int | None,
        metric: str,
        pruner: str = "median",
        n_startup_trials: int = 5,
        min_epochs: int = 1,
    ) -> None:
        self.metric = metric
        self.pruned_at_epoch: int | None = None  # read by JobRecord for result.json
        self.reporter: TrialReporter | None = None
        if trial is None:
            return
        if storage is None or study_name is None:
            raise ConfigError(
                f"callbacks.optuna_pruning: trial {trial} needs the study's storage and name "
                "(hydra.sweeper.storage and hydra.sweeper.study_name); run the search with "
                "hparams_search=optuna, which sets both."
            )
        judge = make_pruner(pruner, n_startup_trials=n_startup_trials, min_epochs=min_epochs)
        self.reporter = TrialReporter(storage, study_name, int(trial), judge)

    def _metrics_callback(self, trainer: pl.Trainer) -> GenerativeMetrics | None:
        return next((cb for cb in trainer.callbacks if isinstance(cb, GenerativeMetrics)), None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.reporter is None or not trainer.is_global_zero:
            return
        metrics = self._metrics_callback(trainer)
        epoch = trainer.current_epoch
        # Lightning keeps a metric's last value in callback_metrics: report only fresh ones.
        if metrics is None or metrics.evaluated_epoch != epoch:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return  # a failed evaluation: the job's result says so, the sweeper tells FAIL
        epochs_done = epoch + 1
        last = trainer.should_stop or epochs_done >= (trainer.max_epochs or math.inf)
        # The last evaluation is reported for the record (the dashboard's curve); stopping
        # after it would save nothing.
        if self.reporter.report(float(value), epochs_done, may_prune=not last):
            self.reporter.mark_pruned(epochs_done)
            self.pruned_at_epoch = epochs_done
            trainer.should_stop = True
            log.info(
                "Trial %d pruned after epoch %d (%s=%.4g): its checkpoint is kept",
                self.reporter.number,
                epochs_done,
                self.metric,
                float(value),
            )
