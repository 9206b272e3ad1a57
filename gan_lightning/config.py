"""Validate a composed run config before any data or network work starts.

Hydra already refuses unknown keys at compose time (configs are in struct mode), so what is left
is values: types and ranges. OmegaConf schemas can type a key but cannot express a range
("lr > 0") or the unions the tricks use (a target is null, a number or a range), so the checks
live in one table of rules here, plus the self-validating dataclasses of the groups that have
one (``Tricks`` for ``tricks``, ``NonFiniteGuard`` for ``guard``).
Every problem found is reported at once, each naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from gan_lightning.errors import ConfigError
from gan_lightning.gan.divergence import NonFiniteGuard
from gan_lightning.gan.tricks import Tricks
from gan_lightning.networks.latents import LATENT_PRIORS
from gan_lightning.sweeps.objective import DIRECTIONS

#: The Hydra config tree every command composes from (``conf/`` beside the package).
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: _is_int(value) and value >= low


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _non_negative(value: Any) -> bool:
    return _is_number(value) and value >= 0


def _unit(value: Any) -> bool:
    """In [0, 1]."""
    return _is_number(value) and 0 <= value <= 1


def _unit_open(value: Any) -> bool:
    """In [0, 1)."""
    return _unit(value) and value < 1


def _betas(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and all(map(_unit_open, value))


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _target(value: Any) -> bool:
    # A smoothed D target: one number, or a [low, high] range drawn per sample.
    if isinstance(value, list | tuple):
        return len(value) == 2 and all(map(_unit, value)) and value[0] <= value[1]
    return _unit(value)


def _train_batches(value: Any) -> bool:
    # Lightning reads an int as a batch count and a float as a share of the epoch.
    if isinstance(value, float):
        return 0 < value <= 1
    return _is_int(value) and value >= 1


def _share(value: Any) -> bool:
    """In (0, 1]."""
    return _is_number(value) and 0 < value <= 1


def _duration(value: Any) -> bool:
    # Lightning's Timer reads "DD:HH:MM:SS" strings.
    return isinstance(value, str) and re.fullmatch(r"\d+:\d\d:\d\d:\d\d", value) is not None


@dataclass(frozen=True)
class Rule:
    key: str
    check: Callable[[Any], bool]
    allowed: str
    required: bool = True  # False: checked only when the key is present (e.g. betas for Adam)


_TARGET = "null, a number in [0, 1] or a range [low, high] within [0, 1]"
_OPTIMIZER_RULES = (
    ("lr", _positive, "a number > 0", True),
    ("betas", _betas, "two numbers in [0, 1), e.g. [0.5, 0.999]", False),
    ("momentum", _non_negative, "a number >= 0", False),
    ("weight_decay", _non_negative, "a number >= 0", False),
    ("eps", _positive, "a number > 0", False),
)

RULES: tuple[Rule, ...] = (
    Rule("seed", _is_int, "an integer"),
    Rule("optimized_metric", DIRECTIONS.__contains__, "one of " + ", ".join(DIRECTIONS), False),
    Rule("num_fixed_samples", _int_at_least(1), "an integer >= 1"),
    Rule("data.batch_size", _int_at_least(1), "an integer >= 1"),
    Rule("data.val_fraction", _unit_open, "a number in [0, 1)"),
    Rule("data.split_seed", _is_int, "an integer"),
    Rule("model.image_size", lambda v: v in (28, 32) and _is_int(v), "28 or 32"),
    Rule("model.latent_dim", _int_at_least(1), "an integer >= 1"),
    Rule("model.num_classes", _int_at_least(0), "an integer >= 0 (0: unconditional)"),
    Rule("model.latent_prior", lambda v: v in LATENT_PRIORS, " or ".join(LATENT_PRIORS)),
    Rule("model.width", _int_at_least(1), "an integer >= 1", required=False),
    *(
        Rule(f"optim.{net}.{name}", check, allowed, required)
        for net in ("g", "d")
        for name, check, allowed, required in _OPTIMIZER_RULES
    ),
    *(
        Rule(f"scheduler.{net}.{name}", check, allowed, required=False)
        for net in ("g", "d")
        for name, check, allowed in (
            ("step_size", _int_at_least(1), "an integer >= 1"),
            ("gamma", _positive, "a number > 0"),
        )
    ),
    Rule("loss.gradient_penalty_weight", _non_negative, "a number >= 0", required=False),
    # Types and ranges of the tricks; Tricks itself then checks how they combine.
    *(
        Rule(f"tricks.label_smoothing.{side}", _target, _TARGET, required=False)
        for side in ("real", "fake")
    ),
    Rule("tricks.label_flip_prob", _unit, "a number in [0, 1]"),
    *(
        Rule(f"tricks.{name}", _int_at_least(1), "an integer >= 1")
        for name in ("d_every_n_batches", "g_steps_per_d", "n_critic")
    ),
    Rule("tricks.instance_noise.std", _non_negative, "a number >= 0"),
    Rule("tricks.instance_noise.anneal_steps", _int_at_least(0), "an integer >= 0"),
    Rule("tricks.ema_decay", _unit_open, "null (off) or a number in [0, 1), e.g. 0.999", False),
    Rule("tricks.ema_kimg", _positive, "null (off) or a number > 0, e.g. 10", False),
    Rule("tricks.ema_rampup", _positive, "null (off) or a number > 0, e.g. 0.05", False),
    Rule("tricks.reuse_fakes", _is_bool, "true or false"),
    Rule("tricks.spectral_norm", _is_bool, "true or false"),
    Rule("tricks.r1_gamma", _non_negative, "a number >= 0"),
    Rule("tricks.classifier_guidance.alpha", _unit, "null (off) or a number in [0, 1]", False),
    Rule("tricks.classifier_guidance.alpha_per_epoch", _is_number, "a number"),
    Rule("guard.min_class_fraction", _unit, "a number in [0, 1]"),
    Rule("metrics.max_time_share", _share, "null or a number in (0, 1]", required=False),
    Rule(
        "trainer.max_time",
        _duration,
        "null or a duration DD:HH:MM:SS, e.g. 00:00:03:00",
        required=False,
    ),
    Rule("trainer.max_epochs", _int_at_least(1), "an integer >= 1"),
    Rule("trainer.log_every_n_steps", _int_at_least(1), "an integer >= 1", required=False),
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
        if not rule.check(value):
            yield rule.key, f"{rule.key}={value!r} is not allowed; it must be {rule.allowed}"


def _dataclass_problems(cfg: DictConfig, skip: set[str]) -> Iterator[str]:
    """Problems found by the dataclasses that validate a whole group (their messages name the
    key); a group whose single values are already wrong is skipped, to report each once."""
    builders: tuple[tuple[str, Callable[[], object]], ...] = (
        ("tricks", lambda: Tricks.from_config(_select(cfg, "tricks"))),
        ("guard", lambda: NonFiniteGuard.from_config(_select(cfg, "guard"))),
    )
    for group, build in builders:
        if group in skip or _select(cfg, group) is _MISSING:
            continue
        try:
            build()
        except ValueError as error:
            yield str(error)


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every value in ``cfg`` that cannot work."""
    broken = list(_rule_problems(cfg))
    groups = {key.split(".")[0] for key, _ in broken}
    problems = [problem for _, problem in broken] + list(_dataclass_problems(cfg, groups))
    if len(problems) == 1:
        raise ConfigError(f"invalid config: {problems[0]}")
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"invalid config, {len(problems)} problems:\n{listing}")
