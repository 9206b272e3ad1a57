"""Validate a composed run config before any data or network work starts.

Hydra already refuses unknown keys at compose time (configs are in struct mode), so what is left
is values: types and ranges. Each key's check is written once, in the ``RULES`` table of the
object that reads it: the class a group's ``_target_`` names (the data module for ``data``, the
loss, the metrics callback for ``metrics``, each callback for its entry), ``gan/tricks.py`` and
``gan/guard.py`` for the two groups built without a target, and :data:`RULES` here for the keys
no object reads before training (seed, model sizes, optimizers, schedulers, trainer).
:func:`validate` checks every table over the config itself and builds nothing but ``Tricks``, a
frozen dataclass, for the tricks that contradict each other; ``train`` then builds each object
once, and its constructor refuses the same values for a caller that builds it directly. Every
problem found is reported at once, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
import pydoc
import re
from collections.abc import Iterable, Iterator
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError

from gan_lightning.errors import ConfigError
from gan_lightning.gan.guard import RULES as GUARD_RULES
from gan_lightning.gan.tricks import RULES as TRICKS_RULES
from gan_lightning.gan.tricks import Tricks
from gan_lightning.networks.latents import LATENT_PRIORS, temperature_rule
from gan_lightning.networks.seed003 import STANDARDIZE_RULE
from gan_lightning.rules import Rule, int_at_least, is_int, number_in, one_of
from gan_lightning.sweeps.objective import DIRECTIONS

_POSITIVE = number_in(0, include_low=False)
_NON_NEGATIVE = number_in(0)
_UNIT_OPEN = number_in(0, 1, include_high=False)


def _betas(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and all(map(_UNIT_OPEN, value))


def _train_batches(value: Any) -> bool:
    # Lightning reads an int as a batch count and a float as a share of the epoch.
    if isinstance(value, float):
        return number_in(0, 1, include_low=False)(value)
    return is_int(value) and value >= 1


def _duration(value: Any) -> bool:
    # Lightning's Timer reads "DD:HH:MM:SS" strings.
    return isinstance(value, str) and re.fullmatch(r"\d+:\d\d:\d\d:\d\d", value) is not None


_OPTIMIZER_RULES = (
    ("lr", _POSITIVE, "a number > 0", True),
    ("betas", _betas, "two numbers in [0, 1), e.g. [0.5, 0.999]", False),
    ("momentum", _NON_NEGATIVE, "a number >= 0", False),
    ("weight_decay", _NON_NEGATIVE, "a number >= 0", False),
    ("eps", _POSITIVE, "a number > 0", False),
)

#: The keys no object reads before training starts: the run's own, the networks' sizes (the
#: networks are not built to validate), optimizers and schedulers (built by Lightning), trainer.
RULES: tuple[Rule, ...] = (
    Rule("seed", is_int, "an integer"),
    Rule("optimized_metric", one_of(tuple(DIRECTIONS)), "one of " + ", ".join(DIRECTIONS), False),
    Rule("num_fixed_samples", int_at_least(1), "an integer >= 1"),
    temperature_rule("temperature"),
    Rule("model.image_size", one_of((28, 32)), "28 or 32"),
    Rule("model.latent_dim", int_at_least(1), "an integer >= 1"),
    Rule("model.num_classes", int_at_least(0), "an integer >= 0 (0: unconditional)", False),
    Rule("model.latent_prior", one_of(LATENT_PRIORS), " or ".join(LATENT_PRIORS)),
    Rule("model.width", int_at_least(1), "an integer >= 1", required=False),
    Rule(
        "model.clusters",
        lambda value: one_of((0,))(value) or int_at_least(2)(value),
        "0 (off) or a number of k-means clusters >= 2 (within each class if conditional), e.g. 30",
        required=False,
    ),
    STANDARDIZE_RULE,
    *(
        Rule(f"optim.{net}.{name}", check, allowed, required)
        for net in ("g", "d")
        for name, check, allowed, required in _OPTIMIZER_RULES
    ),
    *(
        Rule(f"scheduler.{net}.{name}", check, allowed, required=False)
        for net in ("g", "d")
        for name, check, allowed in (
            ("step_size", int_at_least(1), "an integer >= 1"),
            ("gamma", _POSITIVE, "a number > 0"),
        )
    ),
    Rule(
        "trainer.max_time",
        _duration,
        "null or a duration DD:HH:MM:SS, e.g. 00:00:03:00",
        required=False,
    ),
    Rule("trainer.max_epochs", int_at_least(1), "an integer >= 1"),
    Rule("trainer.log_every_n_steps", int_at_least(1), "an integer >= 1", required=False),
    Rule(
        "trainer.limit_train_batches",
        _train_batches,
        "an integer >= 1 (batches) or a number in (0, 1] (share of an epoch)",
        required=False,
    ),
)


_MISSING = object()


def _select(cfg: DictConfig, key: str) -> Any:
    """The value at ``key``, resolved; a list or a group as a plain container."""
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _owners(node: DictConfig, path: str = "") -> Iterator[tuple[str, Any]]:
    """(key, what its ``_target_`` names, None if nothing) for every group ``node`` builds.

    A group that copies another by interpolation (``callbacks.generative_metrics:
    ${metrics}``) is the other's: it is checked there, once. Hydra's own settings are Hydra's.
    """
    target = node.get("_target_")
    if isinstance(target, str):
        yield path, pydoc.locate(target)
    for key in node:
        if path == "" and key == "hydra":
            continue
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        child = node[key]
        if isinstance(child, DictConfig):
            yield from _owners(child, f"{path}.{key}" if path else str(key))


def _owner_rules(cfg: DictConfig) -> tuple[list[Rule], list[str]]:
    """The rules of the keys ``cfg`` holds, and a problem for each ``_target_`` naming nothing.

    Every group without a ``_target_`` (``tricks``, ``guard``) and every key no object reads
    before training (:data:`RULES`) is named here; a group built from a ``_target_`` is
    checked by the ``RULES`` its class holds (the data module for ``data``, the loss for
    ``loss``, each callback for its entry), so a new data module or callback brings its own.
    """
    rules = [*RULES, *TRICKS_RULES, *GUARD_RULES]
    unknown = []
    for key, owner in _owners(cfg):
        if owner is None:
            target = _select(cfg, f"{key}._target_")
            unknown.append(
                f"{key}._target_={target!r} names nothing that can be imported; check the "
                "module path and the class name"
            )
            continue
        rules += [rule for rule in getattr(owner, "RULES", ()) if rule.key.startswith(f"{key}.")]
    return rules, unknown


def _interpolated(cfg: DictConfig, key: str) -> bool:
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    return (
        isinstance(parent, DictConfig)
        and leaf in parent
        and OmegaConf.is_interpolation(parent, leaf)
    )


def _problems(cfg: DictConfig, rules: Iterable[Rule]) -> Iterator[tuple[str, str]]:
    """(key, problem) for every rule a value of ``cfg`` breaks. A key left out takes the
    default of the object that reads it; a null is off where the rule is not required."""
    for rule in rules:
        value = _select(cfg, rule.key)
        if value is _MISSING or (value is None and not rule.required):
            continue
        problem = rule.problem(value)
        if problem:
            yield rule.key, problem


def _missing(cfg: DictConfig) -> Iterator[tuple[str, str]]:
    """(key, problem) for every required key of :data:`RULES` left out (``~seed``): ``train``
    reads those itself, and no object has a default for them."""
    for rule in RULES:
        if rule.required and _select(cfg, rule.key) is _MISSING:
            yield rule.key, f"{rule.key} is missing; it must be {rule.allowed}"


def _resolves(masked: DictConfig, key: str) -> bool:
    """Whether ``key`` can be resolved in ``masked``, where the broken keys are ``???``."""
    try:
        OmegaConf.select(masked, key)
    except InterpolationToMissingValueError:
        return False
    return True


def _broken(cfg: DictConfig, rules: list[Rule]) -> dict[str, str]:
    """Key -> problem for every rule ``cfg`` breaks, each bad value once: a key that takes
    its value from a broken one by interpolation (``data.image_size: ${model.image_size}``)
    is left to that key's line. OmegaConf tells what an interpolation reads: resolved with
    the broken keys made missing, it fails."""
    fed = [rule for rule in rules if _interpolated(cfg, rule.key)]
    broken = dict(_missing(cfg))
    broken.update(_problems(cfg, [rule for rule in rules if rule not in fed]))
    if broken:  # a deep copy costs more than all the checks: only when there is a reason
        masked = copy.deepcopy(cfg)
        OmegaConf.set_readonly(masked, False)
        for key in broken:
            OmegaConf.update(masked, key, MISSING, force_add=True)
        fed = [rule for rule in fed if _resolves(masked, rule.key)]
    broken.update(_problems(cfg, fed))
    return broken


def _combination_problems(cfg: DictConfig) -> list[str]:
    """Tricks that are each fine alone but contradict each other (``n_critic`` with
    ``d_every_n_batches``), found by building ``Tricks``: a frozen dataclass, nothing more."""
    tricks = _select(cfg, "tricks")
    if not isinstance(tricks, dict):
        return []
    try:
        Tricks.from_config(tricks)
    except ConfigError as refusal:
        return str(refusal).splitlines()
    return []


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every value in ``cfg`` that cannot work."""
    rules, problems = _owner_rules(cfg)
    broken = _broken(cfg, rules)
    problems += broken.values()
    if not any(key.startswith("tricks.") for key in broken):
        problems += _combination_problems(cfg)
    if len(problems) == 1:
        raise ConfigError(f"invalid config: {problems[0]}")
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"invalid config, {len(problems)} problems:\n{listing}")


def check_image_size(generator: Any, image_size: int) -> None:
    """Refuse a data size the generator does not make (``data.image_size`` follows
    ``model.image_size``). It spans model and data and needs the built generator, so ``train``
    calls it once the GAN module is built, still before any data is read."""
    if generator.image_size != image_size:
        raise ConfigError(
            f"model.image_size={image_size}, but {type(generator).__name__} makes "
            f"{generator.image_size}x{generator.image_size} images; drop the override "
            "(each model file sets the size its networks need)."
        )
