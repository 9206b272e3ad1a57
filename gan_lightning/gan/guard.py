"""What the training step does about NaN and inf: stop with a clear message, or skip the step.

:class:`NonFiniteGuard` holds the ``guard`` group's settings and the policy: the GAN module
tests each loss (``check_every_step``) and hands a non-finite one to
:meth:`~NonFiniteGuard.skip_or_stop`, and has :meth:`~NonFiniteGuard.check_weights` look at the
weights at every epoch end, before ``ModelCheckpoint`` runs, so a diverged state never replaces
``last.ckpt``. The message names the network, the step, the last good checkpoint and what to try.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from gan_lightning.errors import DivergenceError
from gan_lightning.rules import Rule, int_at_least, is_bool, one_of, refuse_broken

log = logging.getLogger(__name__)

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

    def skip_or_stop(self, problem: str, skipped_steps: int, trainer: pl.Trainer | None) -> int:
        """The skipped-step count once a non-finite loss's step is skipped (logged), or raise.

        ``problem`` says what was found where (network, epoch, steps); the module keeps the
        count, since it travels in the module's checkpoint with the other step counters.

        Raises:
            DivergenceError: with ``nonfinite=stop``, or once ``max_skipped_steps`` were skipped.
        """
        skipping = self.nonfinite == "skip"
        if skipping and skipped_steps < self.max_skipped_steps:
            log.warning("%s: skipped that step (%d so far)", problem, skipped_steps + 1)
            return skipped_steps + 1
        if skipping:
            problem += f", with guard.max_skipped_steps={self.max_skipped_steps} already skipped"
        raise DivergenceError(divergence_message(problem, trainer, can_skip=not skipping))

    @staticmethod
    def check_weights(
        networks: Mapping[str, nn.Module], epoch: int, steps: str, trainer: pl.Trainer | None
    ) -> None:
        """Stop on NaN/inf weights at an epoch end, whatever the settings: nothing trains on
        from them, and a skipped step (or ``check_every_step=false``) may have let them in.

        Raises:
            DivergenceError: naming the first broken parameters of each network, the epoch and
            ``steps`` (``after 10 D and 10 G steps``).
        """
        broken = {name: nonfinite_parameters(net) for name, net in networks.items()}
        if any(broken.values()):
            where = "; ".join(f"{name}: {first_names(bad)}" for name, bad in broken.items() if bad)
            problem = f"NaN/inf weights at the end of epoch {epoch} ({where}), {steps}"
            raise DivergenceError(divergence_message(problem, trainer, can_skip=False))


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
