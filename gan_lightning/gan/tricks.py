"""Stabilization tricks from the seed projects and the GAN literature, as small pure functions.

``Tricks`` is the validated form of the ``tricks`` config group, and the one place its values
are checked: every field is off by default, its path is its config key
(``tricks.label_smoothing.real`` is ``Tricks.label_smoothing.real``), and a bad value stops the
run before any work with a message that names the key, the value and what is allowed. The
training step calls the functions below; each one can be tested alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar

import torch
from torch import Tensor

from gan_lightning.errors import ConfigError
from gan_lightning.gan.augment import check_policies
from gan_lightning.rules import Rule, int_at_least, is_bool, is_number, null_or, number_in

#: A target is off (None), a constant (seed 004: real = 0.9), or a uniform range per sample
#: (seed 002: real in [0.7, 1.0], fake in [0.0, 0.3]).
TargetSpec = float | tuple[float, float] | None

Group = TypeVar("Group")


@dataclass(frozen=True)
class LabelSmoothing:
    """D's targets for real and fake images (``tricks.label_smoothing.real`` / ``.fake``)."""

    real: TargetSpec = None  # None: 1.0
    fake: TargetSpec = None  # None: 0.0


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
class TopK:
    """Top-k generator updates (Sinha et al., NeurIPS 2020): G learns only from its best fakes.

    G's loss is taken over the k fakes D rates most real; k starts at the whole batch, where
    every fake still teaches G something, and falls linearly with the run's progress to
    ``floor`` of it, so late in training the malformed fakes no longer pull G towards them.
    """

    floor: float | None = None  # None = off; the paper's 0.5-0.75

    def keep_at(self, progress: float) -> float:
        """The share of the batch G learns from, ``progress`` being the run's fraction done."""
        if self.floor is None:
            return 1.0
        return 1.0 - (1.0 - self.floor) * min(max(progress, 0.0), 1.0)


@dataclass(frozen=True)
class LeCam:
    """LeCam regularization (Tseng et al., CVPR 2021) against a D that memorizes the data.

    D's outputs on reals are pulled towards the running mean of its outputs on fakes and vice
    versa, which bounds how far apart D can push the two on a small training set.
    """

    weight: float = 0.0  # 0 = off; the paper's 0.3
    ema: float = 0.99  # decay of the running means of D's outputs


@dataclass(frozen=True)
class Consistency:
    """Balanced consistency regularization (bCR; Zhao et al., AAAI 2021) against a D that
    judges where a digit sits rather than what it looks like.

    D's loss gains ``weight`` times the squared change of its logit when each real and each
    fake image is shifted by up to ``max_shift`` pixels. Unlike augmenting D's inputs, D is never
    told that a shifted real image is real, so G gains nothing by drawing shifted digits.
    """

    weight: float = 0.0  # 0 = off; the paper's 10 (on each of reals and fakes)
    max_shift: int = 2  # largest shift in pixels, filled with the background


@dataclass(frozen=True)
class AdaptiveAugment:
    """StyleGAN2-ADA's controller over one augmentation: translation of up to a few pixels.

    Each D input is shifted with probability p; p rises while D's sign on reals,
    r_t = E[sign(D(real))], is above ``target`` (D is overfitting) and falls below it. Only
    translation: a flip or a rotation changes which digit an image shows.
    """

    target: float | None = None  # None = off; StyleGAN2-ADA's 0.6
    kimg: float = 100.0  # thousands of images over which p may move from 0 to 1
    interval: int = 4  # D steps between adjustments of p
    max_shift: int = 3  # largest shift in pixels, filled with the background


@dataclass(frozen=True)
class Tricks:
    """The ``tricks`` group, each field at its key's path; every trick is off by default."""

    label_smoothing: LabelSmoothing = field(default_factory=LabelSmoothing)
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
    r2_gamma: float = 0.0
    reg_every: int = 1
    top_k: TopK = field(default_factory=TopK)
    lecam: LeCam = field(default_factory=LeCam)
    ada: AdaptiveAugment = field(default_factory=AdaptiveAugment)
    lr_decay_to: float | None = None
    mode_seeking: float = 0.0
    consistency: Consistency = field(default_factory=Consistency)

    def lr_factor_at(self, progress: float) -> float:
        """Cosine decay of both learning rates over the run to ``lr_decay_to`` of the start.

        ``progress`` follows the clock when the run is budgeted by ``trainer.max_time``, which a
        per-epoch scheduler cannot: the same schedule fits a 3- and a 10-minute run.
        """
        if self.lr_decay_to is None:
            return 1.0
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.lr_decay_to + (1.0 - self.lr_decay_to) * cosine

    def __post_init__(self) -> None:
        # How values combine is only worth judging once each value alone is fine.
        problems = list(self._value_problems()) or list(self._combination_problems())
        if problems:
            raise ConfigError("\n".join(problems))

    def _value_problems(self) -> Iterator[str]:
        """The type and range of every key, all reported at once."""
        for rule in RULES:
            problem = rule.problem(attrgetter(rule.key.removeprefix("tricks."))(self))
            if problem:
                yield problem
        try:
            check_policies(self.diffaugment)
        except ValueError as unknown:
            yield str(unknown)

    def _combination_problems(self) -> Iterator[str]:
        if self.n_critic > 1 and self.d_every_n_batches > 1:
            yield (
                f"tricks.n_critic={self.n_critic} and tricks.d_every_n_batches="
                f"{self.d_every_n_batches} pull in opposite directions; set one of them to 1"
            )
        if self.ema_decay is not None and self.ema_kimg is not None:
            yield (
                f"tricks.ema_decay={self.ema_decay} and tricks.ema_kimg={self.ema_kimg} both set "
                "the averaged generator's speed; set one of them (the other to null)"
            )
        if self.reg_every > 1 and self.r1_gamma == 0 and self.r2_gamma == 0:
            yield (
                f"tricks.reg_every={self.reg_every} spaces out R1/R2, but both are off; set "
                "tricks.r1_gamma or tricks.r2_gamma, or leave reg_every at 1"
            )
        if self.ema_rampup is not None and self.ema_kimg is None:
            yield (
                f"tricks.ema_rampup={self.ema_rampup} ramps up tricks.ema_kimg, which is "
                "null; set tricks.ema_kimg (e.g. 10) or drop ema_rampup"
            )

    @property
    def follows_progress(self) -> bool:
        """Whether a setting follows the run's progress (``gan/schedules.py``)."""
        return self.top_k.floor is not None or self.lr_decay_to is not None

    @property
    def uses_ema(self) -> bool:
        return self.ema_decay is not None or self.ema_kimg is not None

    @property
    def uses_targets(self) -> bool:
        smoothing = self.label_smoothing
        return smoothing.real is not None or smoothing.fake is not None or self.label_flip_prob > 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Tricks:
        """Build from the ``tricks`` group (a plain mapping), refusing unknown keys by name."""
        return _build(cls, "tricks", config)


#: The nested groups of ``tricks``, each a dataclass of its own.
_NESTED: dict[str, type] = {
    "label_smoothing": LabelSmoothing,
    "instance_noise": InstanceNoise,
    "classifier_guidance": ClassifierGuidance,
    "top_k": TopK,
    "lecam": LeCam,
    "ada": AdaptiveAugment,
    "consistency": Consistency,
}


def _build(kind: type[Group], key: str, config: Mapping[str, Any]) -> Group:
    """``kind`` from the mapping at ``key``: nested groups become their dataclasses, lists
    tuples (the dataclasses are frozen), and ``translation,cutout`` from the command line a
    tuple of policies. An unknown key is refused by name rather than as a TypeError."""
    known = sorted(f.name for f in fields(kind))  # type: ignore[arg-type]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"{key} has unknown keys {unknown}; known: {known}")
    values = {}
    for name, value in config.items():
        if name in _NESTED:
            value = _build(_NESTED[name], f"{key}.{name}", value or {})
        elif name == "diffaugment":
            value = as_policy_list(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return kind(**values)


_UNIT = number_in(0, 1)


def _is_target(value: Any) -> bool:
    """Off, one number, or a [low, high] range drawn per sample, all within [0, 1]."""
    if isinstance(value, list | tuple):
        return len(value) == 2 and all(map(_UNIT, value)) and value[0] <= value[1]
    return null_or(_UNIT)(value)


#: Every key's type and range; the key under ``tricks.`` is the field's path in ``Tricks``.
RULES: tuple[Rule, ...] = (
    *(
        Rule(
            f"tricks.label_smoothing.{side}",
            _is_target,
            "null, a number in [0, 1] or a range [low, high] within [0, 1]",
        )
        for side in ("real", "fake")
    ),
    Rule("tricks.label_flip_prob", _UNIT, "a number in [0, 1]"),
    *(
        Rule(f"tricks.{name}", int_at_least(1), "an integer >= 1")
        for name in ("d_every_n_batches", "g_steps_per_d", "n_critic")
    ),
    Rule("tricks.instance_noise.std", number_in(0), "a number >= 0"),
    Rule("tricks.instance_noise.anneal_steps", int_at_least(0), "an integer >= 0"),
    Rule(
        "tricks.ema_decay",
        null_or(number_in(0, 1, include_high=False)),
        "null (off) or a number in [0, 1), e.g. 0.999",
    ),
    Rule(
        "tricks.ema_kimg",
        null_or(number_in(0, include_low=False)),
        "null (off) or a number > 0, e.g. 10",
    ),
    Rule(
        "tricks.ema_rampup",
        null_or(number_in(0, include_low=False)),
        "null (off) or a number > 0, e.g. 0.05",
    ),
    Rule("tricks.spectral_norm", is_bool, "true or false"),
    Rule("tricks.reuse_fakes", is_bool, "true or false"),
    Rule("tricks.r1_gamma", number_in(0), "a number >= 0"),
    Rule("tricks.classifier_guidance.alpha", null_or(_UNIT), "null (off) or a number in [0, 1]"),
    Rule("tricks.classifier_guidance.alpha_per_epoch", is_number, "a number"),
    Rule("tricks.r2_gamma", number_in(0), "a number >= 0"),
    Rule("tricks.reg_every", int_at_least(1), "an integer >= 1 (StyleGAN2's lazy R1: 16)"),
    Rule(
        "tricks.top_k.floor",
        null_or(number_in(0, 1, include_low=False)),
        "null (off) or a number in (0, 1], e.g. 0.5",
    ),
    Rule("tricks.lecam.weight", number_in(0), "a number >= 0 (paper: 0.3)"),
    Rule("tricks.lecam.ema", number_in(0, 1, include_high=False), "a number in [0, 1), e.g. 0.99"),
    Rule("tricks.ada.target", null_or(_UNIT), "null (off) or a number in [0, 1], e.g. 0.6"),
    Rule("tricks.ada.kimg", number_in(0, include_low=False), "a number > 0, e.g. 100"),
    Rule("tricks.ada.interval", int_at_least(1), "an integer >= 1, e.g. 4"),
    Rule("tricks.ada.max_shift", int_at_least(1), "an integer >= 1 (pixels), e.g. 3"),
    Rule("tricks.mode_seeking", number_in(0), "a number >= 0 (MSGAN: 1)"),
    Rule("tricks.consistency.weight", number_in(0), "a number >= 0 (bCR: 10)"),
    Rule("tricks.consistency.max_shift", int_at_least(1), "an integer >= 1 (pixels), e.g. 2"),
    Rule(
        "tricks.lr_decay_to",
        null_or(number_in(0, 1)),
        "null (off) or a number in [0, 1], e.g. 0.25",
    ),
)


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
    real = make_targets(tricks.label_smoothing.real, 1.0, like)
    fake = make_targets(tricks.label_smoothing.fake, 0.0, like)
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


def top_k_indices(fake_logits: Tensor, keep: float) -> Tensor | None:
    """The indices of the ``keep`` share of fakes D rates most real (None: keep every one)."""
    count = fake_logits.shape[0]
    k = max(1, round(keep * count))
    if k >= count:
        return None
    return fake_logits.detach().topk(k).indices


def mode_seeking_loss(images: Tensor, latents: Tensor) -> Tensor:
    """MSGAN's mode-seeking term (Mao et al., CVPR 2019) for a batch drawn in pairs.

    The batch's first and second halves are pairs drawn for the same label (and cluster):
    the loss is the pairs' mean latent distance over their mean image distance, so the
    generator is pushed to turn different latents into different images rather than settle on
    one style per label. ``1e-5`` keeps two identical images from dividing by zero.
    """
    half = images.shape[0] // 2
    image_gap = (images[:half] - images[half : 2 * half]).abs().float().mean()
    latent_gap = (latents[:half] - latents[half : 2 * half]).abs().float().mean()
    return 1.0 / (image_gap / latent_gap + 1e-5)
