"""Train a GAN: ``python -m gan_lightning.train [group=option ...] [key=value ...]``.

Thin on purpose (lightning-hydra-template's shape): validate, prepare the run folder, seed,
build, fit, and return the metric a sweeper optimizes. Validating and preparing come first so
that a bad value, folder or checkpoint stops the run before any data is read or network built.
A single run fails with a one-paragraph message. In a sweep (``-m``) each job records how it
went in ``<job>/result.json`` (and why it failed in ``<job>/failure.txt``), returns
``optimized_metric`` (the worst possible value when it failed, so a search counts it as a bad
trial and goes on) and the others go on.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_lightning.build import build_gan_module, build_trainer, plain
from gan_lightning.cli import command
from gan_lightning.config import check_image_size, validate
from gan_lightning.data.datamodule import WholeTensorDataModule
from gan_lightning.errors import (
    ConfigError,
    DivergenceError,
    RunFault,
    expected_error,
    task_wrapper,
)
from gan_lightning.gan.module import GANModule
from gan_lightning.runs.checkpoint_io import CheckpointWriteError
from gan_lightning.runs.checkpoints import check_resumable, load_checkpoint
from gan_lightning.runs.disk_space import estimate_run_bytes, warn_if_short_of_space
from gan_lightning.runs.faults import describe_fault
from gan_lightning.runs.folder import RunFolder, held, prepared
from gan_lightning.runs.lock import FolderInUse
from gan_lightning.sweeps.jobs import FAILURE_FILE, JobRecord, record_failure, set_job_threads
from gan_lightning.sweeps.objective import objective_value, worst
from gan_lightning.sweeps.preflight import distributed_problem

log = logging.getLogger(__name__)


def train(
    cfg: DictConfig, *, sweep_job: bool = False, record: JobRecord | None = None
) -> dict[str, float]:
    """Fit the GAN described by ``cfg``; returns the final callback metrics.

    ``record`` learns the trainer as soon as it exists, so a failed job still tells the sweep
    summary how many epochs it finished.
    """
    _validate(cfg, sweep_job=sweep_job)
    with prepared(Path(cfg.paths.output_dir), cfg.get("ckpt_path"), sweep_job=sweep_job) as run:
        if run.ckpt_path is not None:  # the checkpoint must fit this config's networks
            check_resumable(load_checkpoint(run.ckpt_path), plain(cfg), Path(run.ckpt_path))
        pl.seed_everything(cfg.seed, workers=True)
        datamodule, module, trainer = _build(cfg, run)
        if record is not None:
            record.trainer = trainer
        _fit(trainer, module, datamodule, run, cfg)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def _validate(cfg: DictConfig, *, sweep_job: bool) -> None:
    validate(cfg)
    problem = distributed_problem(cfg.trainer) if sweep_job else None
    if problem:
        raise ConfigError(problem)


def _build(cfg: DictConfig, run: RunFolder) -> tuple[WholeTensorDataModule, GANModule, pl.Trainer]:
    """The data, the GAN and the trainer, each built once, with the checks that need them."""
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_gan_module(cfg)
    check_image_size(module.generator, cfg.data.image_size)
    datamodule.check_generator(module.generator.num_classes, module.generator.channels)
    warn_if_short_of_space(run.path, estimate_run_bytes(module, cfg))
    return datamodule, module, build_trainer(cfg)


def _fit(
    trainer: pl.Trainer,
    module: GANModule,
    datamodule: WholeTensorDataModule,
    run: RunFolder,
    cfg: DictConfig,
) -> None:
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=run.ckpt_path, weights_only=True)
    except Exception as error:
        expected = expected_error(error)
        # A failed write's message lacks what a fault mid-run needs: what is kept, what next.
        if expected is not None and not isinstance(expected, CheckpointWriteError):
            raise
        raise RunFault(describe_fault(error, trainer, run.path, cfg.get("callbacks"))) from error


def _sweep_job(cfg: DictConfig, launcher: DictConfig) -> float:
    """One job of a multirun: its value of ``optimized_metric``, recorded in its folder.

    The job holds its folder from its first record to its last. One that another live process
    holds gets nothing written into it: the job logs why and counts as failed.
    """
    objective = cfg.get("optimized_metric") or "metrics/fid"
    try:
        with held(Path(cfg.paths.output_dir)):
            return _recorded_job(cfg, objective, JobRecord(threads=set_job_threads(launcher)))
    except FolderInUse as busy:
        log.error("This sweep job did not run (the others go on): %s", busy)
        return worst(objective)


def _recorded_job(cfg: DictConfig, objective: str, record: JobRecord) -> float:
    output_dir = Path(cfg.paths.output_dir)
    (output_dir / FAILURE_FILE).unlink(missing_ok=True)  # from an earlier attempt of this job
    try:
        metrics = train(cfg, sweep_job=True, record=record)
    except Exception as error:
        reason = record_failure(output_dir, error)
        status = "diverged" if isinstance(expected_error(error), DivergenceError) else "failed"
        record.write(
            output_dir, status=status, metric=objective, value=worst(objective), reason=reason
        )
        return worst(objective)
    value = objective_value(metrics, objective)
    record.write(output_dir, status="ok", metric=objective, value=value)
    return value


@command(config_name="train")
@task_wrapper
def main(cfg: DictConfig) -> float | None:
    hydra_config = HydraConfig.get()
    try:
        if hydra_config.mode == RunMode.MULTIRUN:
            return _sweep_job(cfg, hydra_config.launcher)
        train(cfg)
        return None
    except SIGTERMException as stop:
        # Lightning's SystemExit carries no code, which would report success to a scheduler.
        raise SystemExit(128 + signal.SIGTERM) from stop


if __name__ == "__main__":
    main()
