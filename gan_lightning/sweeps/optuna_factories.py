"""Optuna's samplers and pruners by the names ``hydra.sweeper.sampler`` and ``.pruner`` take.

The sweeper and every trial's job build the same pruner from the same settings: the job asks it
whether to stop after each evaluation, the sweeper's sampler reads it (Hyperband samples each
bracket from its own trials). A sampler is seeded per batch of trials with ``seed`` plus the
number of trials already in the study, so a search is reproducible from ``seed``, yet a resumed
search or a second worker on the same study never replays the proposals of the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, CmaEsSampler, GridSampler, RandomSampler, TPESampler

from gan_lightning.errors import ConfigError


def _tpe(seed: int | None, n_startup_trials: int, grid: Mapping[str, list[Any]]) -> BaseSampler:
    # constant_liar: a trial still running counts as a bad one, so trials proposed while others
    # run (n_jobs > 1, several workers) spread out instead of piling onto one point.
    return TPESampler(seed=seed, n_startup_trials=n_startup_trials, constant_liar=True)


def _random(seed: int | None, n_startup_trials: int, grid: Mapping[str, list[Any]]) -> BaseSampler:
    return RandomSampler(seed=seed)


def _cmaes(seed: int | None, n_startup_trials: int, grid: Mapping[str, list[Any]]) -> BaseSampler:
    # CMA-ES models numbers only; categorical keys are drawn at random (Optuna warns once).
    return CmaEsSampler(
        seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False
    )


def _grid(seed: int | None, n_startup_trials: int, grid: Mapping[str, list[Any]]) -> BaseSampler:
    return GridSampler(dict(grid), seed=seed)


SAMPLERS: dict[str, Callable[[int | None, int, Mapping[str, list[Any]]], BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "grid": _grid,
}


def _median(n_startup_trials: int, min_epochs: int) -> BasePruner:
    # A trial is stopped when its value after epoch N is worse than the median of the other
    # trials' after epoch N, once n_startup_trials trials have finished.
    return MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=min_epochs)


def _hyperband(n_startup_trials: int, min_epochs: int) -> BasePruner:
    # The longest a trial runs is learnt from the first one that finishes (max_resource="auto").
    return HyperbandPruner(min_resource=min_epochs)


def _none(n_startup_trials: int, min_epochs: int) -> BasePruner:
    return NopPruner()


PRUNERS: dict[str, Callable[[int, int], BasePruner]] = {
    "median": _median,
    "hyperband": _hyperband,
    "none": _none,
}


def _unknown(key: str, name: str, names: Mapping[str, Any]) -> ConfigError:
    return ConfigError(
        f"hydra.sweeper.{key}={name} is not a {key} this search knows; use one of "
        f"{', '.join(names)} (hydra.sweeper.{key}=<name> on the command line, or in "
        "conf/hparams_search/optuna.yaml)."
    )


def check_names(sampler: str, pruner: str) -> None:
    """Refuse an unknown sampler or pruner name before any trial starts."""
    if sampler not in SAMPLERS:
        raise _unknown("sampler", sampler, SAMPLERS)
    if pruner not in PRUNERS:
        raise _unknown("pruner", pruner, PRUNERS)


def make_sampler(
    name: str,
    *,
    seed: int | None,
    n_startup_trials: int,
    trials_so_far: int,
    grid: Mapping[str, list[Any]] | None = None,
) -> BaseSampler:
    """The sampler ``name`` for the next batch of trials (see the module docstring for seeds)."""
    if name not in SAMPLERS:
        raise _unknown("sampler", name, SAMPLERS)
    batch_seed = None if seed is None else seed + trials_so_far
    return SAMPLERS[name](batch_seed, n_startup_trials, grid or {})


def make_pruner(name: str, *, n_startup_trials: int, min_epochs: int) -> BasePruner:
    """The pruner ``name``: ``min_epochs`` is how many epochs every trial trains before it
    may be stopped; the median pruner also waits for ``n_startup_trials`` finished trials."""
    if name not in PRUNERS:
        raise _unknown("pruner", name, PRUNERS)
    return PRUNERS[name](n_startup_trials, min_epochs)
