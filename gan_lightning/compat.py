"""Every private attribute of Lightning, TensorBoard's writer, torchmetrics and torch we rely on.

Each sits behind one function, so an upgrade that renames one breaks here, in one line, and
``tests/test_compat.py`` says which. Checked against pytorch-lightning 2.6.6, torch 2.14.1
(``torch.utils.tensorboard``, ``torch._foreach_*``) and torchmetrics 1.9.0; none has a public
equivalent there. ``pyproject.toml`` holds Lightning to 2.6.x for that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch.utils.tensorboard import SummaryWriter
    from torchmetrics import Metric


def step_metrics_due(trainer: pl.Trainer) -> bool:
    """Whether Lightning writes this batch's step metrics (every ``trainer.log_every_n_steps``).

    Lightning 2.6.6: ``_LoggerConnector.should_update_logs``. Logging only on those batches
    saves a ``self.log`` per step whose value the next one would overwrite unwritten.
    """
    return trainer._logger_connector.should_update_logs


def logged_step(trainer: pl.Trainer) -> int:
    """The step Lightning gives the loggers: batches that stepped an optimizer, not global_step.

    Lightning 2.6.6: ``_TrainingEpochLoop._batches_that_stepped`` (saved in its checkpoints).
    """
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def event_writer(writer: SummaryWriter) -> Any:
    """The ``FileWriter`` under a ``SummaryWriter``: it takes raw ``Event`` and ``Summary``
    protos, which the public methods cannot write (a purge marker, hparams without a scalar,
    an animated GIF).

    torch 2.14.1: ``SummaryWriter._get_file_writer()``.
    """
    return writer._get_file_writer()


@contextmanager
def reset_keeps_state(metric: Metric, name: str) -> Iterator[None]:
    """Within the block, ``metric.reset()`` leaves the state ``name`` as it is.

    torchmetrics 1.9.0: ``Metric.reset`` restores every state registered in ``_defaults``;
    torchmetrics' own KID hides its real features from it the same way.
    """
    default = metric._defaults.pop(name)
    try:
        yield
    finally:
        metric._defaults[name] = default


def lerp_all_(targets: list[torch.Tensor], ends: list[torch.Tensor], weight: float) -> None:
    """``target.lerp_(end, weight)`` for each pair, as one fused kernel per dtype and device.

    torch 2.14.1: ``torch._foreach_lerp_``, the multi-tensor op the fused optimizers use. The
    averaged generator's update after each G step costs one call instead of one per parameter.
    """
    torch._foreach_lerp_(targets, ends, weight)
