"""Checks of single config values, in one vocabulary for every object that owns a group.

Each owner of config keys lists them as :class:`Rule`\\ s under their full keys, once: the class
a group's ``_target_`` names holds its ``RULES`` (``MNISTDataModule``, ``GenerativeMetrics``,
``SampleGrid``, ...), ``gan/tricks.py`` and ``gan/guard.py`` hold those of the two groups built
without a target, and :data:`gan_lightning.config.RULES` those no object reads before training.
``config.validate`` checks every table over the composed config before anything is built, and
each constructor refuses the same values with :func:`refuse_broken`, so the words are the same
wherever a value is caught: ``<key>=<value> is not allowed; it must be <allowed>``, every
problem at once.

Numbers exclude ``bool`` (YAML's ``true`` is Python's ``1``) and NaN/inf, which no setting takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gan_lightning.errors import ConfigError

#: A predicate on one config value.
Check = Callable[[Any], bool]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float."""
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def int_at_least(low: int) -> Check:
    return lambda value: is_int(value) and value >= low


def number_in(
    low: float = -math.inf,
    high: float = math.inf,
    *,
    include_low: bool = True,
    include_high: bool = True,
) -> Check:
    """A finite number in the interval from ``low`` to ``high``, each end closed unless told."""

    def check(value: Any) -> bool:
        if not is_number(value):
            return False
        above = value >= low if include_low else value > low
        below = value <= high if include_high else value < high
        return above and below

    return check


def one_of(choices: Sequence[Any]) -> Check:
    """Equal to one of ``choices`` and of its type: 28.0 is not the image size 28, true not 1."""
    return lambda value: any(type(value) is type(c) and value == c for c in choices)


def null_or(check: Check) -> Check:
    """``check``, or null: the setting is off."""
    return lambda value: value is None or check(value)


def shown(value: Any) -> str:
    """The value as the user wrote it: a range as a YAML list, not as the tuple it is kept as."""
    return repr(list(value) if isinstance(value, tuple) else value)


@dataclass(frozen=True)
class Rule:
    """One config key, the check its value must pass, and what is allowed, in words."""

    key: str
    check: Check
    allowed: str
    #: ``config.RULES``: a required key left out is a problem; False lets it be absent or null
    #: (betas for SGD). An owner's key left out takes the owner's default either way.
    required: bool = True

    def problem(self, value: Any) -> str | None:
        if self.check(value):
            return None
        return f"{self.key}={shown(value)} is not allowed; it must be {self.allowed}"


def refuse_broken(
    rules: Iterable[Rule], values: Mapping[str, Any], error: type[Exception] = ConfigError
) -> None:
    """Raise ``error`` with one line per rule that its value in ``values`` (by key) breaks."""
    problems = [problem for rule in rules if (problem := rule.problem(values[rule.key]))]
    if problems:
        raise error("\n".join(problems))
