"""The failures a user can fix, and the one way every command reports them.

Every expected failure derives from :class:`GanLightningError`: its message names what was
wrong (the key, the file, the step) and what to do about it, so the user gets that paragraph
alone. Anything else is a bug and keeps its traceback. The standard base each class also
derives from (``ValueError``, ``RuntimeError``, ``OSError``) is the one a caller outside the
project would reach for first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from hydra.errors import CompactHydraException
from omegaconf import DictConfig

Result = TypeVar("Result")


class GanLightningError(Exception):
    """A failure the user can fix; its message says what went wrong and how to fix it."""


class ConfigError(GanLightningError, ValueError):
    """A config value that cannot work; the message names the key, the value and the range."""


class DataError(GanLightningError, ValueError):
    """A data file or folder is missing or malformed; the message names it and the fix."""


class CheckpointError(GanLightningError, ValueError):
    """A checkpoint that is missing, unreadable, unsafe or does not match what was asked."""


class MissingClassifierError(CheckpointError, FileNotFoundError):
    """No classifier weights where the config points; the message names the training command."""


class RunError(GanLightningError, RuntimeError):
    """A problem with the run as asked for (paths, checkpoints), reported before any work."""


class DivergenceError(GanLightningError, RuntimeError):
    """Training produced NaN or inf; the message names the network, the step and what to try."""


class RunFault(GanLightningError, RuntimeError):
    """A run stopped by a fault after it started; the message says what is kept and what next."""


class SampleError(GanLightningError, ValueError):
    """A sampling request that cannot be met as asked (keys, digits, output file)."""


class EvaluateError(GanLightningError, ValueError):
    """Nothing to evaluate where the user pointed, or a run that cannot be scored as asked."""


def expected_error(error: BaseException | None) -> GanLightningError | None:
    """The first :class:`GanLightningError` in ``error``'s chain of causes, else None.

    Hydra's ``instantiate`` wraps whatever a constructor raises in its own exception, so the
    user's error may sit one or two causes down.
    """
    while error is not None:
        if isinstance(error, GanLightningError):
            return error
        error = error.__cause__
    return None


def task_wrapper(command: Callable[[DictConfig], Result]) -> Callable[[DictConfig], Result]:
    """Report an expected failure of ``command`` as one paragraph; let a bug keep its traceback.

    Put it under ``@hydra.main``. The expected error is re-raised as Hydra's
    ``CompactHydraException``, whose message alone Hydra prints to stderr before exiting with
    status 1; ``HYDRA_FULL_ERROR=1`` makes Hydra show the whole traceback instead, which is
    what a developer wants. (lightning-hydra-template's ``task_wrapper`` has the same place;
    it only logs, because its errors are all bugs.)
    """

    @functools.wraps(command)
    def wrapped(cfg: DictConfig) -> Result:
        try:
            return command(cfg)
        except Exception as error:
            expected = expected_error(error)
            if expected is None:
                raise
            raise CompactHydraException(f"{type(expected).__name__}: {expected}") from error

    return wrapped
