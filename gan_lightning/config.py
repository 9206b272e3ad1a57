"""Validate a composed run config before any data or network work starts.

Hydra already refuses unknown keys at compose time (configs are in struct mode), so what is left
is values: types and ranges. Each value is checked in one place. The object that uses a group
checks it (``Tricks`` for ``tricks``, ``NonFiniteGuard`` for ``guard``, the data module for
``data``, the metrics callback for ``metrics``, the loss for ``loss``), and :func:`validate`
builds those, which reads no data. This module keeps the rules no such object owns before
training (seed, optimizers, schedulers, trainer, model sizes) and the checks that span groups.
Every problem found is reported at once, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from gan_lightning.errors import ConfigError
from gan_lightning.gan.guard import NonFiniteGuard
from gan_lightning.gan.tricks import Tricks
from gan_lightning.networks.latents import LATENT_PRIORS
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

#: The keys no object checks before training starts: the run's own, the networks' sizes (the
#: networks are not built to validate), optimizers and schedulers (built by Lightning), trainer.
RULES: tuple[Rule, ...] = (
    Rule("seed", is_int, "an integer"),
    Rule("optimized_metric", one_of(tuple(DIRECTIONS)), "one of " + ", ".join(DIRECTIONS), False),
    Rule("num_fixed_samples", int_at_least(1), "an integer >= 1"),
    Rule("model.image_size", one_of((28, 32)), "28 or 32"),
    Rule("model.latent_dim", int_at_least(1), "an integer >= 1"),
    Rule("model.num_classes", int_at_least(0), "an integer >= 0 (0: unconditional)", False),
    Rule("model.latent_prior", one_of(LATENT_PRIORS), " or ".join(LATENT_PRIORS)),
    Rule("model.width", int_at_least(1), "an integer >= 1", required=False),
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
    value = OmegaConf.select(cfg, key, default=_MISSING)
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _rule_problems(cfg: DictConfig) -> Iterator[tuple[str, str]]:
    """(key, problem) for every rule broken by ``cfg``."""
    for rule in RULES:
        value = _select(cfg, rule.key)
        if value is _MISSING or (value is None and not rule.required):
            if rule.required:
                yield rule.key, f"{rule.key} is missing; it must be {rule.allowed}"
            continue
        problem = rule.problem(value)
        if problem:
            yield rule.key, problem


#: The objects that own a group's checks, built as ``train`` builds them. Building one reads no
#: data: the data module and the metrics callback only check and store their settings.
_OWNERS: tuple[tuple[str, Callable[[DictConfig], object]], ...] = (
    ("tricks", lambda cfg: Tricks.from_config(_select(cfg, "tricks"))),
    ("guard", lambda cfg: NonFiniteGuard.from_config(_select(cfg, "guard"))),
    ("loss", lambda cfg: instantiate(cfg.loss)),
    ("data", lambda cfg: instantiate(cfg.data)),
    ("metrics", lambda cfg: instantiate(cfg.metrics)),
)


def _refusals(build: Callable[[], object]) -> list[str]:
    """The problems ``build`` refuses with: one per line of its ``ValueError`` (an owner
    reports every broken key of its group at once), unwrapped from Hydra's exception."""
    try:
        build()
    except (ValueError, InstantiationException) as error:
        refusal = error.__cause__ if isinstance(error, InstantiationException) else error
        if not isinstance(refusal, ValueError):
            raise
        return str(refusal).splitlines()
    return []


def _fed_by(group: DictConfig, keys: set[str]) -> bool:
    """Whether ``group`` takes one of ``keys`` by interpolation (``data.image_size`` is
    ``${model.image_size}``)."""
    text = OmegaConf.to_yaml(group)
    return any("${" + key + "}" in text for key in keys)


def _owner_problems(cfg: DictConfig, broken: set[str]) -> Iterator[str]:
    """Problems found by the objects that own a group (their messages name the key). A group
    with a broken rule, or fed a broken key, is skipped: one bad value is reported once."""
    groups = {key.split(".")[0] for key in broken}
    for group, build in _OWNERS:
        node = OmegaConf.select(cfg, group)
        if node is None or group in groups or _fed_by(node, broken):
            continue
        yield from _refusals(lambda build=build: build(cfg))


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every value in ``cfg`` that cannot work."""
    broken = list(_rule_problems(cfg))
    problems = [problem for _, problem in broken]
    problems += _owner_problems(cfg, {key for key, _ in broken})
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
