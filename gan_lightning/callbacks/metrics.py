"""Quantitative GAN metrics during training: every few epochs, and on many samples at the end."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from gan_lightning.classifier import TRAIN_COMMAND, launch_training
from gan_lightning.data.datamodule import MNISTDataModule, WholeTensorDataModule
from gan_lightning.errors import MissingClassifierError
from gan_lightning.metrics.suite import (
    LOGGED_METRICS,
    GenerativeMetricSuite,
    add_generated,
    build_suite,
)
from gan_lightning.rules import (
    Rule,
    int_at_least,
    is_int,
    null_or,
    number_in,
    one_of,
    refuse_broken,
)

MISSING_POLICIES = ("warn", "error", "train")

log = logging.getLogger(__name__)


class GenerativeMetrics(pl.Callback):
    """Scores the sampling generator with :class:`GenerativeMetricSuite` at epoch ends.

    Every ``every_n_epochs`` epochs it draws ``num_samples`` samples and logs ``metrics/<name>``
    (see ``LOGGED_METRICS``) to every logger, at epoch granularity; the last epoch uses
    ``final_num_samples`` and its values also go to ``<run>/metrics.json``. Add the tags to
    ``run_summary.metric_names`` to see the final values in TensorBoard's HPARAMS table.

    An evaluation costs about the same whatever the model, while an epoch of an MLP GAN on a
    CPU takes a second and one of a DCGAN a minute; so ``max_time_share`` skips an evaluation
    whenever the evaluations so far took more than that share of the training time so far.
    Curves are as dense as the budget allows on every machine, and the share stays bounded
    (it is logged as ``metrics/time_share``). The final evaluation always runs.

    Args:
        classifier_ckpt: the classifier weights file (``metrics.classifier_ckpt``).
        every_n_epochs: evaluate after every n-th epoch (the last epoch always).
        num_samples: samples per evaluation during training; FID and KID are biased upwards
            at small counts, so compare runs at equal counts only.
        final_num_samples: samples for the final evaluation.
        batch_size: images per generator/classifier call while evaluating.
        missing_classifier: what to do when ``classifier_ckpt`` does not exist: ``warn`` (skip
            the metrics, saying which command trains a classifier), ``error``, or ``train``
            (run that command first, on this run's data).
        seed: seeds the evaluation noise: the same latent vectors at every evaluation.
        max_time_share: upper bound on evaluation time / training time during training;
            ``None`` evaluates every ``every_n_epochs`` epochs whatever it costs.
        min_class_fraction: warn of mode collapse when the rarest class is a smaller share of
            the generated samples than this (an even spread over 10 classes gives 0.1).
    """

    #: The one home of the ``metrics`` settings' checks: ``config.validate`` reads them from
    #: the class ``metrics._target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("metrics.every_n_epochs", int_at_least(1), "an integer >= 1"),
        *(
            Rule(f"metrics.{key}", int_at_least(10), "an integer >= 10 (IS uses 10 splits)")
            for key in ("num_samples", "final_num_samples")
        ),
        Rule("metrics.batch_size", int_at_least(1), "an integer >= 1"),
        Rule(
            "metrics.missing_classifier",
            one_of(MISSING_POLICIES),
            "one of " + ", ".join(MISSING_POLICIES),
        ),
        Rule("metrics.seed", is_int, "an integer"),
        Rule(
            "metrics.max_time_share",
            null_or(number_in(0, 1, include_low=False)),
            "null (evaluate every metrics.every_n_epochs epochs whatever it costs) or a number "
            "in (0, 1]",
        ),
        Rule("metrics.min_class_fraction", number_in(0, 1), "a number in [0, 1]"),
    )

    def __init__(
        self,
        classifier_ckpt: str | None,
        every_n_epochs: int = 1,
        num_samples: int = 1000,
        final_num_samples: int = 10000,
        batch_size: int = 500,
        missing_classifier: str = "warn",
        seed: int = 0,
        max_time_share: float | None = 0.1,
        min_class_fraction: float = 0.02,
    ) -> None:
        settings = {
            "metrics.every_n_epochs": every_n_epochs,
            "metrics.num_samples": num_samples,
            "metrics.final_num_samples": final_num_samples,
            "metrics.batch_size": batch_size,
            "metrics.missing_classifier": missing_classifier,
            "metrics.seed": seed,
            "metrics.max_time_share": max_time_share,
            "metrics.min_class_fraction": min_class_fraction,
        }
        refuse_broken(self.RULES, settings)
        self.classifier_ckpt = Path(classifier_ckpt) if classifier_ckpt else None
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.final_num_samples = final_num_samples
        self.batch_size = batch_size
        self.missing_classifier = missing_classifier
        self.seed = seed
        self.max_time_share = max_time_share
        self.min_class_fraction = min_class_fraction
        self.train_seconds = 0.0  # training time so far, epoch ends excluded
        self.eval_seconds = 0.0  # time spent in evaluations during training
        self._epoch_start: float | None = None
        self.enabled = True
        self.suite: GenerativeMetricSuite | None = None
        self.final: dict[str, Any] | None = None
        self.evaluated_epoch: int | None = None  # the latest evaluation's (pruning reads it)

    # ------------------------------------------------------------------ set-up
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Find (or train) the classifier before any training work starts."""
        if stage != "fit":
            return
        datamodule = trainer.datamodule
        if not isinstance(datamodule, WholeTensorDataModule):
            raise TypeError(
                "callbacks.generative_metrics needs the run's data module for the real test "
                "images (trainer.fit(module, datamodule=...)); drop it with "
                "callbacks.generative_metrics=null to train without metrics"
            )
        if not datamodule.labeled:
            # The data module has said so at start: every metric here reads the classifier.
            self.enabled = False
            return
        if self.classifier_ckpt is not None and self.classifier_ckpt.is_file():
            return
        where = (
            f"no classifier at {self.classifier_ckpt} (metrics.classifier_ckpt)"
            if self.classifier_ckpt is not None
            else "metrics.classifier_ckpt is not set"
        )
        if self.missing_classifier == "train" and not isinstance(datamodule, MNISTDataModule):
            raise MissingClassifierError(
                f"{where}, and metrics.missing_classifier=train trains on MNIST-layout files "
                f"only. Train one on this data first: `{TRAIN_COMMAND} data=<this data option> "
                "data.root=<the same folder>` (docs/own-data.md), then run again."
            )
        if self.missing_classifier == "train" and self.classifier_ckpt is not None:
            if trainer.is_global_zero:
                rank_zero_info(f"{where}: training one first (metrics.missing_classifier=train)")
                launch_training(self.classifier_ckpt, datamodule.root, datamodule.dataset)
            trainer.strategy.barrier("classifier trained")
            return
        message = (
            f"{where}, so FID, IS and the other generative metrics cannot be computed. Train "
            f"a classifier with `{TRAIN_COMMAND}`, set metrics.missing_classifier=train to "
            "train one automatically, or drop the metrics with callbacks.generative_metrics=null."
        )
        if self.missing_classifier == "warn":
            rank_zero_warn(message + " Metrics are skipped for this run.")
            self.enabled = False
            return
        raise MissingClassifierError(message)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Built here, not in setup: the module is on its device by now, and so is the suite.
        # Only rank zero evaluates; with several devices the others would only repeat it.
        if self.enabled and self.suite is None and trainer.is_global_zero:
            self.suite = build_suite(
                self.classifier_ckpt,
                trainer.datamodule,
                device=pl_module.device,
                batch_size=self.batch_size,
            )

    # ------------------------------------------------------------------ evaluation
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        suite = self.suite
        if suite is None:  # disabled, or not rank zero
            return
        if self._epoch_start is not None:
            self.train_seconds += time.perf_counter() - self._epoch_start
        epoch = trainer.current_epoch
        last = (0 < (trainer.max_epochs or 0) <= epoch + 1) or trainer.should_stop
        if last or self._due(epoch):
            start = time.perf_counter()
            self._evaluate(trainer, pl_module, last)
            if not last:  # the final evaluation is once per run, outside the budget
                self.eval_seconds += time.perf_counter() - start
        # Every epoch, so the last value is the share over the whole run.
        share = self.eval_seconds / (self.eval_seconds + self.train_seconds)
        pl_module.log("metrics/time_share", share, on_epoch=True, rank_zero_only=True)

    def _due(self, epoch: int) -> bool:
        if (epoch + 1) % self.every_n_epochs:
            return False
        return self.max_time_share is None or (
            self.eval_seconds <= self.max_time_share * self.train_seconds
        )

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, last: bool) -> None:
        suite = self.suite
        epoch = trainer.current_epoch
        suite.reset_fake()
        add_generated(
            suite,
            pl_module.sampling_generator(),
            self.final_num_samples if last else self.num_samples,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        values = suite.compute()
        self.evaluated_epoch = epoch
        for name in LOGGED_METRICS:
            if name in values:
                pl_module.log(f"metrics/{name}", values[name], on_epoch=True, rank_zero_only=True)
        fraction = values.get("min_class_fraction")
        if fraction is not None and fraction < self.min_class_fraction:
            log.warning(
                "Possible mode collapse at epoch %d: the rarest class is %.2f%% of the generated "
                "samples judged by the classifier (an even spread over 10 classes gives 10%%; "
                "warning below metrics.min_class_fraction=%g).",
                epoch,
                100 * fraction,
                self.min_class_fraction,
            )
        if last:
            self.final = {"epoch": epoch, "classifier_ckpt": str(self.classifier_ckpt), **values}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.final is not None:
            path = Path(trainer.default_root_dir) / "metrics.json"
            path.write_text(json.dumps(self.final, indent=2) + "\n")
