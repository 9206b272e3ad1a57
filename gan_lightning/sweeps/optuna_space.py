"""The search space of ``hparams_search=optuna``: Hydra's override grammar as Optuna distributions.

A search is written the way any Hydra sweep is (``hydra.sweeper.params`` in
``conf/hparams_search/optuna.yaml``, or the command line, which wins): ``choice(a, b)`` or
``a,b`` is categorical, ``range(1, 5)`` a stepped int or float range (without its stop, as
Hydra reads it), ``interval(1e-5, 1e-3)`` a continuous one, and ``tag(log, interval(...))``
samples it log-uniformly. A plain value (``model=mlp``) is set in every trial. A sampled
trial goes back to Hydra as overrides (``optim.d.lr=0.00027``), so a job's config, folder
and summary row look like any other sweep job's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from gan_lightning.errors import ConfigError

#: What the refusals point at: where the search space is written.
WHERE = "hydra.sweeper.params (conf/hparams_search/optuna.yaml) or the command line"


@dataclass
class SearchSpace:
    """The swept keys as distributions, and the overrides every trial gets as they are."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """A trial's sampled ``params`` as the overrides of its job, fixed ones first."""
        return [*self.fixed, *(f"{key}={value}" for key, value in params.items())]

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every key, for Optuna's GridSampler; a continuous key is refused."""
        grid = {}
        for key, distribution in self.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                grid[key] = list(distribution.choices)
            elif distribution.step is not None:  # Int or Float distribution with a step
                count = round((distribution.high - distribution.low) / distribution.step) + 1
                grid[key] = [distribution.low + i * distribution.step for i in range(count)]
            else:
                raise ConfigError(
                    f"hydra.sweeper.sampler=grid needs a finite set of values for every key, but "
                    f"{key} is an interval. Give it choice(...) or range(...) in {WHERE}, or use "
                    "another sampler (tpe, random, cmaes)."
                )
        return grid


def _distribution(override: Override) -> BaseDistribution:
    sweep = override.value()
    key = override.get_key_element()
    log = "log" in sweep.tags
    if isinstance(sweep, ChoiceSweep):
        if sweep.shuffle or log:
            raise ConfigError(
                f"{key}: shuffle(...) and tag(log, ...) mean nothing to a choice; write "
                f"{key}=choice(...) in {WHERE}."
            )
        # Encoded as override strings: a list stays "[0.5,0.999]", a group option its name.
        choices = [str(value) for value in override.sweep_iterator(transformer=Transformer.encode)]
        return CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        values = list(sweep.range())
        if sweep.shuffle or log or not values:
            raise ConfigError(
                f"{override.input_line} must be a non-empty range(start, "
                f"stop[, step]) without shuffle or log (Optuna cannot sample a stepped range "
                f"log-uniformly); use tag(log, interval(...)) for that, in {WHERE}."
            )
        if all(isinstance(value, int) for value in values):
            return IntDistribution(values[0], values[-1], step=int(sweep.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(sweep.step))
    if isinstance(sweep, IntervalSweep):
        start, end = sweep.start, sweep.end
        if isinstance(start, int) and isinstance(end, int):
            return IntDistribution(start, end, log=log)
        return FloatDistribution(float(start), float(end), log=log)
    raise ConfigError(
        f"{override.input_line}: an Optuna search samples choice(...), "
        f"range(...) and interval(...) only; fix it in {WHERE}."
    )


def parse_search_space(params: Mapping[str, Any] | None, arguments: Iterable[str]) -> SearchSpace:
    """``params`` (``hydra.sweeper.params``) and the command line's overrides as a search space.

    A key on the command line replaces the same key in ``params``.
    """
    parser = OverridesParser.create()
    lines = {str(key): f"{key}={value}" for key, value in (params or {}).items()}
    for override in parser.parse_overrides(list(arguments)):
        lines[override.get_key_element()] = override.input_line
    space = SearchSpace()
    for line in lines.values():
        override = parser.parse_override(line)
        if not override.is_sweep_override():
            space.fixed.append(line)
            continue
        try:
            space.distributions[override.get_key_element()] = _distribution(override)
        except ValueError as error:  # Optuna's own check of low, high and step
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"{line}: {error}; fix it in {WHERE}.") from error
    return space


def grid_size(grid: Mapping[str, list[Any]]) -> int:
    """How many trials a grid search over ``grid`` has."""
    return math.prod(len(values) for values in grid.values())
