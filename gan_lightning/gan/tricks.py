"""Stabilization tricks from the seed projects and the GAN literature, as small pure functions.

``Tricks`` is the validated form of the ``tricks`` config group: every field is off by default
and each is checked where it enters, so a bad value stops the run before any work with a message
that names the key, the value and the allowed range. The training step calls the functions below;
each one can be tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from gan_lightning.gan.augment import check_policies

#: A target is off (None), a constant (seed 004: real = 0.9), or a uniform range per sample
#: (seed 002: real in [0.7, 1.0], fake in [0.0, 0.3]).
TargetSpec = float | tuple[float, float] | None


@dataclass(frozen=True)
class InstanceNoise:
    """Gaussian noise on D's inputs (Sønderby et al. 2016), annealed linearly to zero."""

    std: float = 0.0
    anneal_steps: int = 0  # D steps until the noise reaches zero; 0 keeps it constant

    def std_at(self, d_step: int) -> float:
        if self.anneal_steps <= 0:
            return self.std
        return self.std * max(0.0, 1.0 - d_step / self.anneal_steps)


@dataclass(frozen=True)
class ClassifierGuidance:
    """Seed 000: G loss = (1 - alpha) * adversarial + alpha * CE(classifier(G(z, y)), y)."""

    alpha: float | None = None  # None = off; seed 000 starts at 0.5
    alpha_per_epoch: float = 0.0  # added to alpha each epoch, result clamped to [0, 1]

    def alpha_at(self, epoch: int) -> float:
        if self.alpha is None:
            return 0.0
        return min(1.0, max(0.0, self.alpha + self.alpha_per_epoch * epoch))


@dataclass(frozen=True)
class Tricks:
    real_target: TargetSpec = None
    fake_target: TargetSpec = None
    label_flip_prob: float = 0.0
    d_every_n_batches: int = 1
    g_steps_per_d: int = 1
    n_critic: int = 1
    instance_noise: InstanceNoise = field(default_factory=InstanceNoise)
    ema_decay: float | None = None
    ema_kimg: float | None = None
    ema_rampup: float | None = None
    spectral_norm: bool = False
    r1_gamma: float = 0.0
    diffaugment: tuple[str, ...] = ()
    classifier_guidance: ClassifierGuidance = field(default_factory=ClassifierGuidance)
    reuse_fakes: bool = False

    def __post_init__(self) -> None:
        for key, spec in (("real", self.real_target), ("fake", self.fake_target)):
            _check_target(f"tricks.label_smoothing.{key}", spec)
        _check_range("tricks.label_flip_prob", self.label_flip_prob, 0.0, 1.0)
        for key in ("d_every_n_batches", "g_steps_per_d", "n_critic"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"tricks.{key}={value!r} must be an integer >= 1")
        if self.n_critic > 1 and self.d_every_n_batches > 1:
            raise ValueError(
                f"tricks.n_critic={self.n_critic} and tricks.d_every_n_batches="
                f"{self.d_every_n_batches} pull in opposite directions; set one of them to 1"
            )
        if self.instance_noise.std < 0 or self.instance_noise.anneal_steps < 0:
            raise ValueError(f"tricks.instance_noise={self.instance_noise} must be >= 0")
        if self.ema_decay is not None:
            _check_range("tricks.ema_decay", self.ema_decay, 0.0, 1.0, open_upper=True)
        if self.ema_decay is not None and self.ema_kimg is not None:
            raise ValueError(
                f"tricks.ema_decay={self.ema_decay} and tricks.ema_kimg={self.ema_kimg} both set "
                "the averaged generator's speed; set one of them (the other to null)"
            )
        if self.ema_kimg is not None and self.ema_kimg <= 0:
            raise ValueError(f"tricks.ema_kimg={self.ema_kimg} must be > 0 (or null: off)")
        if self.ema_rampup is not None:
            if self.ema_kimg is None:
                raise ValueError(
                    f"tricks.ema_rampup={self.ema_rampup} ramps up tricks.ema_kimg, which is "
                    "null; set tricks.ema_kimg (e.g. 10) or drop ema_rampup"
                )
            if self.ema_rampup <= 0:
                raise ValueError(f"tricks.ema_rampup={self.ema_rampup} must be > 0 (or null)")
        if self.r1_gamma < 0:
            raise ValueError(f"tricks.r1_gamma={self.r1_gamma} must be >= 0")
        check_policies(self.diffaugment)
        if self.classifier_guidance.alpha is not None:
            _check_range("tricks.classifier_guidance.alpha", self.classifier_guidance.alpha, 0, 1)

    @property
    def uses_ema(self) -> bool:
        return self.ema_decay is not None or self.ema_kimg is not None

    @property
    def uses_targets(self) -> bool:
        return (
            self.real_target is not None or self.fake_target is not None or self.label_flip_prob > 0
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Tricks:
        """Build from the ``tricks`` group (a plain mapping), refusing unknown keys by name."""
        config = dict(config)
        smoothing = dict(config.pop("label_smoothing", None) or {})
        unknown_smoothing = set(smoothing) - {"real", "fake"}
        if unknown_smoothing:
            raise ValueError(
                f"tricks.label_smoothing has unknown keys {sorted(unknown_smoothing)}; "
                "use tricks.label_smoothing.real / .fake"
            )
        known = {f.name for f in fields(cls)} - {"real_target", "fake_target"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"tricks has unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(
            real_target=_as_target(smoothing.get("real")),
            fake_target=_as_target(smoothing.get("fake")),
            instance_noise=InstanceNoise(**(config.pop("instance_noise", None) or {})),
            classifier_guidance=ClassifierGuidance(
                **(config.pop("classifier_guidance", None) or {})
            ),
            diffaugment=as_policy_list(config.pop("diffaugment", None)),
            **config,
        )


def _as_target(spec: Any) -> TargetSpec:
    if spec is None or isinstance(spec, int | float):
        return None if spec is None else float(spec)
    return tuple(float(v) for v in spec)  # type: ignore[return-value]


def _check_range(
    key: str, value: float, low: float, high: float, *, open_upper: bool = False
) -> None:
    ok = low <= value < high if open_upper else low <= value <= high
    if not ok:
        bracket = ")" if open_upper else "]"
        raise ValueError(f"{key}={value} is outside the allowed range [{low}, {high}{bracket}")


def _check_target(key: str, spec: TargetSpec) -> None:
    if spec is None:
        return
    values = spec if isinstance(spec, tuple) else (spec,)
    if len(values) not in (1, 2) or (len(values) == 2 and values[0] > values[1]):
        raise ValueError(f"{key}={list(values)} must be one number or a range [low, high]")
    for value in values:
        _check_range(key, value, 0.0, 1.0)


def make_targets(spec: TargetSpec, default: float, like: Tensor) -> Tensor:
    """Per-sample D targets shaped like ``like``: a constant or uniform draws from a range."""
    if spec is None:
        return torch.full_like(like, default)
    if isinstance(spec, tuple):
        low, high = spec
        return torch.empty_like(like).uniform_(low, high)
    return torch.full_like(like, spec)


def flip_targets(real: Tensor, fake: Tensor, prob: float) -> tuple[Tensor, Tensor]:
    """Swap the real and fake target of each sample with probability ``prob`` (noisy labels)."""
    if prob <= 0:
        return real, fake
    flip = torch.rand_like(real) < prob
    return torch.where(flip, fake, real), torch.where(flip, real, fake)


def discriminator_targets(tricks: Tricks, like: Tensor) -> tuple[Tensor, Tensor]:
    real = make_targets(tricks.real_target, 1.0, like)
    fake = make_targets(tricks.fake_target, 0.0, like)
    return flip_targets(real, fake, tricks.label_flip_prob)


def add_instance_noise(images: Tensor, std: float) -> Tensor:
    return images + std * torch.randn_like(images) if std > 0 else images


def as_policy_list(policies: Sequence[str] | str | None) -> tuple[str, ...]:
    """Accept ``translation,cutout`` from the command line as well as a YAML list."""
    if not policies:
        return ()
    if isinstance(policies, str):
        return tuple(name.strip() for name in policies.split(",") if name.strip())
    return tuple(policies)
