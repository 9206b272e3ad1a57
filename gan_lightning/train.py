"""Train a GAN: ``python -m gan_lightning.train [group=option ...] [key=value ...]``.

Thin on purpose (lightning-hydra-template's shape): check, seed, build, fit, and return the
metric a sweeper optimizes. The checks come first so a bad value, folder or checkpoint stops
the run before any data is read or network built. In a sweep (``-m``) each job records how it
went in ``<job>/result.json`` (and why it failed in ``<job>/failure.txt``), returns
``optimized_metric`` (the worst possible value when it failed, so a search counts it as a bad
trial and goes on) and the others go on; a single run fails with a one-paragraph message.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_lightning.build import build_gan_module, build_trainer, plain
from gan_lightning.cli import command
from gan_lightning.config import check_image_size, validate
from gan_lightning.errors import (
    ConfigError,
    DivergenceError,
    RunFault,
    expected_error,
    task_wrapper,
)
from gan_lightning.runs.checkpoint_io import CheckpointWriteError, remove_partial_files
from gan_lightning.runs.checkpoints import check_resumable, load_checkpoint
from gan_lightning.runs.disk_space import estimate_run_bytes, warn_if_short_of_space
from gan_lightning.runs.faults import describe_fault
from gan_lightning.runs.folder import ensure_writable, report_resume_point, resolve_ckpt_path
from gan_lightning.sweeps.jobs import FAILURE_FILE, JobRecord, record_failure, set_job_threads
from gan_lightning.sweeps.objective import objective_value, worst
from gan_lightning.sweeps.preflight import distributed_problem

log = logging.getLogger(__name__)


def train(
    cfg: DictConfig, *, sweep_job: bool = False, record: JobRecord | None = None
) -> dict[str, Any]:
    """Fit the GAN described by ``cfg``; returns the final callback metrics.

    ``record`` learns the trainer as soon as it exists, so a failed job still tells the sweep
    summary how many epochs it finished.
    """
    validate(cfg)
    problem = distributed_problem(cfg.trainer) if sweep_job else None
    if problem:
        raise ConfigError(problem)
    output_dir = Path(cfg.paths.output_dir)
    ensure_writable(output_dir)
    remove_partial_files(output_dir / "checkpoints")
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir, sweep_job=sweep_job)
    if cfg.get("ckpt_path") == "last" and not (sweep_job and ckpt_path is None):
        report_resume_point(ckpt_path, output_dir)
    if ckpt_path is not None:
        check_resumable(load_checkpoint(ckpt_path), plain(cfg), Path(ckpt_path))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_gan_module(cfg)
    check_image_size(module.generator, cfg.data.image_size)
    datamodule.check_generator(module.generator.num_classes, module.generator.channels)
    warn_if_short_of_space(output_dir, estimate_run_bytes(module, cfg))
    trainer = build_trainer(cfg)
    if record is not None:
        record.trainer = trainer
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except Exception as error:
        expected = expected_error(error)
        # A failed write's message lacks what a fault mid-run needs: what is kept, what next.
        if expected is not None and not isinstance(expected, CheckpointWriteError):
            raise
        raise RunFault(describe_fault(error, trainer, output_dir, cfg.get("callbacks"))) from error
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


@command(config_name="train")
@task_wrapper
def main(cfg: DictConfig) -> float | None:
    hydra_config = HydraConfig.get()
    sweep_job = hydra_config.mode == RunMode.MULTIRUN
    output_dir = Path(cfg.paths.output_dir)
    (output_dir / FAILURE_FILE).unlink(missing_ok=True)  # from an earlier attempt of this job
    objective = cfg.get("optimized_metric") or "metrics/fid"
    record = JobRecord()
    if sweep_job:
        record.threads = set_job_threads(hydra_config.launcher)
    try:
        metrics = train(cfg, sweep_job=sweep_job, record=record)
    except SIGTERMException as stop:
        # Lightning's SystemExit carries no code, which would report success to a scheduler.
        raise SystemExit(128 + signal.SIGTERM) from stop
    except Exception as error:
        if not sweep_job:
            raise
        reason = record_failure(output_dir, error)
        status = "diverged" if isinstance(expected_error(error), DivergenceError) else "failed"
        record.write(
            output_dir, status=status, metric=objective, value=worst(objective), reason=reason
        )
        return worst(objective)
    if not sweep_job:
        return None
    value = objective_value(metrics, objective)
    record.write(output_dir, status="ok", metric=objective, value=value)
    return value


if __name__ == "__main__":
    main()
