"""Train a GAN: ``python -m gan_lightning.train [group=option ...] [key=value ...]``.

Thin on purpose (lightning-hydra-template's shape): check, seed, build, fit, and return the
metric a sweeper optimizes. The checks come first so a bad value, folder or checkpoint stops
the run before any data is read or network built. In a sweep (``-m``) each job records how it
went in ``<job>/result.json`` (and why it failed in ``<job>/failure.txt``), returns
``optimized_metric`` (the worst possible value when it failed, so a search counts it as a bad
trial and goes on) and the others go on; a single run fails with a one-paragraph message.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from gan_lightning.build import build_gan_module, build_trainer, plain
from gan_lightning.callbacks.guards import DivergenceError
from gan_lightning.checkpoints import CheckpointError, check_resumable, load_checkpoint
from gan_lightning.config import ConfigError, validate
from gan_lightning.data import DataError
from gan_lightning.objective import objective_value, worst
from gan_lightning.sweeps.checks import check_plugins, distributed_problem
from gan_lightning.sweeps.jobs import JobRecord, set_job_threads

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
#: Written into a sweep job's folder when the job fails; read by the sweep summary.
FAILURE_FILE = "failure.txt"

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A problem with the run as asked for (paths, checkpoints), reported before any work."""


#: Errors whose message says everything: the user gets the message, not a traceback.
KNOWN_ERRORS = (ConfigError, DataError, CheckpointError, RunError, DivergenceError)


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file: a read-only or full disk fails now, not at the
    first checkpoint an epoch later."""
    probe = folder / ".write_probe"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as file:
            # Whole blocks, synced: a nearly full disk can accept a few cached bytes.
            file.write(bytes(64 * 1024))
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or error
        raise RunError(
            f"cannot write to the output folder {folder}: {reason}. Free some space or fix the "
            "permissions, or write elsewhere with paths.log_dir=<folder> (or hydra.run.dir=...)."
        ) from error
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def resolve_ckpt_path(
    ckpt_path: str | None, output_dir: Path, *, sweep_job: bool = False
) -> str | None:
    """``last`` means this run folder's ``checkpoints/last.ckpt``; any other path must exist.

    A folder that already holds checkpoints is never reused without ``ckpt_path``. In a sweep,
    ``ckpt_path=last`` starts the jobs that never reached a checkpoint from scratch, so a
    re-run sweep resumes what it can and redoes the rest.
    """
    checkpoints = output_dir / "checkpoints"
    if ckpt_path is None:
        existing = sorted(checkpoints.glob("*.ckpt"))
        if existing:
            raise RunError(
                f"{output_dir} already holds a run ({existing[-1].name}); nothing is overwritten. "
                "Resume it with ckpt_path=last, or start a new run in another folder "
                "(leave hydra.run.dir unset to get a fresh timestamped one)."
            )
        return None
    path = checkpoints / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if path.is_file():
        return str(path)
    if ckpt_path == "last" and sweep_job:
        log.info("No %s: this sweep job starts from scratch.", path)
        return None
    hint = (
        "pass the old run's folder too: hydra.run.dir=<run folder> ckpt_path=last"
        if ckpt_path == "last"
        else "check the path (checkpoints live in <run folder>/checkpoints/)"
    )
    raise RunError(f"ckpt_path={ckpt_path}: no checkpoint at {path}; {hint}")


def _check_image_size(generator: Any, image_size: int) -> None:
    if generator.image_size != image_size:
        raise ConfigError(
            f"model.image_size={image_size}, but {type(generator).__name__} makes "
            f"{generator.image_size}x{generator.image_size} images; drop the override "
            "(each model file sets the size its networks need)."
        )


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
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir, sweep_job=sweep_job)
    if ckpt_path is not None:
        check_resumable(load_checkpoint(ckpt_path), plain(cfg), Path(ckpt_path))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_gan_module(cfg)
    _check_image_size(module.generator, cfg.data.image_size)
    trainer = build_trainer(cfg)
    if record is not None:
        record.trainer = trainer
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def known_error(error: BaseException) -> BaseException | None:
    """The first of our own errors in ``error``'s chain (Hydra wraps errors from constructors)."""
    while error is not None:
        if isinstance(error, KNOWN_ERRORS):
            return error
        error = error.__cause__
    return None


def record_failure(output_dir: Path, error: Exception) -> str:
    """Write why a sweep job failed where the sweep summary (and the user) will look for it;
    returns the one-line reason."""
    known = known_error(error)
    reason = f"{type(known or error).__name__}: {known or error}"
    headline = " ".join(reason.split())  # the summary's one line per job
    details = reason if known else "".join(traceback.format_exception(error))
    text = headline if details == headline else f"{headline}\n\n{details}"
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / FAILURE_FILE).write_text(text + "\n")
    log.error("This sweep job failed (the others go on): %s", reason)
    return headline


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
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
        if sweep_job:
            reason = record_failure(output_dir, error)
            status = "diverged" if isinstance(known_error(error), DivergenceError) else "failed"
            record.write(
                output_dir, status=status, metric=objective, value=worst(objective), reason=reason
            )
            return worst(objective)
        known = known_error(error)
        if known is None:
            raise
        # Hydra prints a compact exception's message alone; HYDRA_FULL_ERROR=1 shows the trace.
        raise CompactHydraException(f"{type(known).__name__}: {known}") from error
    if not sweep_job:
        return None
    value = objective_value(metrics, objective)
    record.write(output_dir, status="ok", metric=objective, value=value)
    return value


if __name__ == "__main__":
    check_plugins(sys.argv[1:])
    main()
