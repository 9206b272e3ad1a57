"""What the training step does about NaN and inf: stop with a clear message, or skip the step.

:class:`NonFiniteGuard` holds the ``guard`` group's settings; the GAN module tests each loss
with it and checks the weights at every epoch end, before ``ModelCheckpoint`` runs, so a
diverged state never replaces ``last.ckpt``. The message names the network, the step, the last
good checkpoint and what to try.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from gan_lightning.rules import Rule, int_at_least, is_bool, one_of, refuse_broken

NONFINITE_ACTIONS = ("stop", "skip")
#: The one home of the ``guard`` keys' checks, which ``config.validate`` reads.
RULES: tuple[Rule, ...] = (
    Rule("guard.nonfinite", one_of(NONFINITE_ACTIONS), "one of " + ", ".join(NONFINITE_ACTIONS)),
    Rule("guard.check_every_step", is_bool, "true or false"),
    Rule("guard.max_skipped_steps", int_at_least(0), "an integer >= 0"),
)


@dataclass(frozen=True)
class NonFiniteGuard:
    """What the training step does when a loss is NaN or inf (the ``guard`` config group).

    ``check_every_step`` tests each loss with ``torch.isfinite``: free on CPU, one host sync per
    optimizer step on GPU (the CPU waits for the step's kernels). Turned off, divergence is
    still caught by the weights check at each epoch end, one sync per epoch.
    """

    nonfinite: str = "stop"  # stop | skip
    check_every_step: bool = True
    max_skipped_steps: int = 100  # with nonfinite=skip: a run that keeps diverging stops anyway

    def __post_init__(self) -> None:
        refuse_broken(
            RULES, {f"guard.{field.name}": getattr(self, field.name) for field in fields(self)}
        )

    @classmethod
    def from_config(cls, guard: Mapping[str, Any]) -> NonFiniteGuard:
        """The fields from the ``guard`` group (a mapping)."""
        return cls(**{field.name: guard[field.name] for field in fields(cls)})


def nonfinite_parameters(network: nn.Module) -> list[str]:
    """Names of the parameters of ``network`` that hold a NaN or inf."""
    named = list(network.named_parameters())
    if not named:
        return []
    # One reduction and one host sync for the whole network, not one per tensor.
    finite = torch.stack([torch.isfinite(param).all() for _, param in named]).tolist()
    return [name for (name, _), ok in zip(named, finite, strict=True) if not ok]


def first_names(names: Iterable[str], count: int = 3) -> str:
    """``a, b, c and 4 more``: enough to locate a problem without a wall of names."""
    names = list(names)
    shown = ", ".join(names[:count])
    return shown if len(names) <= count else f"{shown} and {len(names) - count} more"


def divergence_message(problem: str, trainer: pl.Trainer | None, *, can_skip: bool) -> str:
    """What diverged, what survived and what to try: the text of a :class:`DivergenceError`."""
    checkpoint = getattr(trainer, "checkpoint_callback", None)
    last = getattr(checkpoint, "last_model_path", "") or ""
    kept = (
        f"The last good checkpoint, {last}, was left untouched; resume from it with "
        "ckpt_path=last after changing the settings."
        if last
        else "No checkpoint had been written yet."
    )
    skip = "; or guard.nonfinite=skip to skip such steps" if can_skip else ""
    return (
        f"{problem}. Training stopped. {kept} To try: lower optim.d.lr / optim.g.lr, "
        f"tricks.spectral_norm=true or loss=hinge{skip}."
    )
