"""The averaged generator (Karras et al.; Yazici et al. 2019) and BatchNorm "standing statistics".

An exponential moving average of G's weights samples visibly cleaner digits than the live G,
whose weights jitter with every adversarial step. We keep a frozen copy of G alone and lerp it
after each G step, which is simpler and exact compared to averaging the whole LightningModule.

BatchNorm makes both the EMA copy and an eval-mode G subtle: running statistics copied from (or
lagging behind) the live weights do not match the weights they are used with. Before sampling we
therefore recompute them on fresh noise batches (StudioGAN's "standing statistics").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from gan_lightning.compat import lerp_all_
from gan_lightning.networks.latents import sample_latents


def make_ema(generator: nn.Module) -> nn.Module:
    return copy.deepcopy(generator).requires_grad_(False).eval()


def warmed_up_decay(decay: float, step: int) -> float:
    """``min(decay, (1 + step) / (10 + step))``: the average forgets its random start quickly.

    With a constant 0.999 the initial weights still hold e^-1 of the average after 1,000 G
    steps, about three epochs here: a short run would sample from a blur of its first minutes.
    The warm-up (TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) reaches 0.99 after
    890 steps and 0.999 after 9,000.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


def half_life_decay(
    half_life_kimg: float, rampup: float | None, batch_size: int, images_seen: int
) -> float:
    """StyleGAN2-ADA's averaging speed: the weight of the past halves every ``half_life_kimg``
    thousand images, and with ``rampup`` the half-life is at most ``rampup`` times the images
    seen so far.

    A fixed decay is tuned for one run length: 0.999 forgets too slowly for a 10-minute run and
    too fast for a day-long one. A half-life in images does not depend on the batch size, and
    the ramp-up lets the average follow a generator that still improves quickly early on
    (Karras et al. 2020, ``training_loop.py``: ``ema_kimg`` and ``ema_rampup``).
    """
    half_life = half_life_kimg * 1000.0
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@dataclass(frozen=True)
class DecaySchedule:
    """The decay of each update, from the ``tricks.ema_*`` settings (one of the two is set).

    ``half_life_kimg`` (``tricks.ema_kimg``, ramped up by ``rampup``) wins: see
    :func:`half_life_decay`; else ``decay`` (``tricks.ema_decay``) warmed up, see
    :func:`warmed_up_decay`.
    """

    decay: float | None = None
    half_life_kimg: float | None = None
    rampup: float | None = None

    def at(self, g_steps: int, batch_size: int) -> float:
        """The decay for the update after G's step number ``g_steps`` on ``batch_size`` images."""
        if self.half_life_kimg is not None:
            images_seen = g_steps * batch_size
            return half_life_decay(self.half_life_kimg, self.rampup, batch_size, images_seen)
        if self.decay is None:
            raise ValueError("an EMA schedule needs tricks.ema_decay or tricks.ema_kimg")
        return warmed_up_decay(self.decay, g_steps)


@torch.no_grad()
def update_ema_(ema: nn.Module, live: nn.Module, decay: float) -> None:
    ema_params = list(ema.parameters())
    live_params = [p.detach() for p in live.parameters()]
    lerp_all_(ema_params, live_params, 1.0 - decay)
    for ema_buffer, live_buffer in zip(ema.buffers(), live.buffers(), strict=True):
        ema_buffer.copy_(live_buffer)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in module.modules())


@torch.no_grad()
def sampling_copy(
    generator: nn.Module,
    *,
    temperature: float = 1.0,
    batches: int = 4,
    batch_size: int = 256,
    seed: int = 0,
) -> nn.Module:
    """An eval-mode copy of ``generator`` whose BatchNorm statistics match its weights.

    The copy draws its latents at ``temperature`` (:func:`~gan_lightning.networks.latents.temper`),
    its BatchNorm statistics included: they are those of the images it will be asked for.
    Uses its own seeded RNG so that sampling never consumes the training RNG: a resumed run
    replays the same random stream as an uninterrupted one.
    """
    sampler = copy.deepcopy(generator).requires_grad_(False)
    sampler.sampling_temperature = temperature
    if not has_batchnorm(sampler):
        return sampler.eval()
    device = next(sampler.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    norms = [m for m in sampler.modules() if isinstance(m, _BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the noise batches
    sampler.train()
    for _ in range(batches):
        z = sample_latents(sampler, batch_size, rng=rng, device=device)
        labels = None
        if sampler.num_classes:
            labels = torch.randint(sampler.num_classes, (batch_size,), generator=rng, device=device)
        sampler(z, labels)
    return sampler.eval()
