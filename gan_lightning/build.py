"""Turn a composed run config into objects: the one place that knows how groups map to code.

``train``, the benchmark and the tests all build through here, so "the framework path" means
the same thing everywhere.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gan_lightning.gan.compatibility import check_compatible
from gan_lightning.gan.guard import NonFiniteGuard
from gan_lightning.gan.module import GANModule
from gan_lightning.gan.tricks import Tricks
from gan_lightning.networks.init import apply_spectral_norm_, initialize_


def plain(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as resolved plain containers: safe for ``torch.load(weights_only=True)``."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def build_gan_module(cfg: DictConfig) -> GANModule:
    """The GAN module of ``cfg``, its parts checked against each other and its networks ready to
    train: initialized as ``model.init`` says, D under spectral norm with
    ``tricks.spectral_norm``. The module trains what it is given, so a test or a notebook can hand
    it networks prepared any other way.
    """
    tricks = Tricks.from_config(plain(cfg.tricks))
    guide = None
    if tricks.classifier_guidance.alpha is not None:
        from gan_lightning.classifier import load_classifier

        guide = load_classifier(cfg.metrics.classifier_ckpt)
    generator = instantiate(cfg.model.generator)
    discriminator = instantiate(cfg.model.discriminator)
    loss = instantiate(cfg.loss)
    schedulers = cfg.get("scheduler") or {}
    g_scheduler = instantiate(schedulers.g) if schedulers.get("g") else None
    d_scheduler = instantiate(schedulers.d) if schedulers.get("d") else None
    check_compatible(
        loss,
        tricks,
        generator,
        discriminator,
        guide,
        has_scheduler=g_scheduler is not None or d_scheduler is not None,
    )
    initialize_(generator, cfg.model.init)
    initialize_(discriminator, cfg.model.init)
    if tricks.spectral_norm:
        apply_spectral_norm_(discriminator)
    return GANModule(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=instantiate(cfg.optim.g),
        d_optimizer=instantiate(cfg.optim.d),
        g_scheduler=g_scheduler,
        d_scheduler=d_scheduler,
        loss=loss,
        tricks=tricks,
        guide_classifier=guide,
        run_config=plain(cfg),
        num_fixed_samples=cfg.num_fixed_samples,
        seed=cfg.seed,
        compile=cfg.compile,
        channels_last=cfg.channels_last,
        guard=NonFiniteGuard.from_config(cfg.guard),
        temperature=cfg.temperature,
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of the ``callbacks`` group with a ``_target_``; set one to null to drop it."""
    return [
        instantiate(spec)
        for spec in (cfg.get("callbacks") or {}).values()
        if spec is not None and "_target_" in spec
    ]


def build_loggers(cfg: DictConfig) -> list[Any]:
    return [
        instantiate(spec)
        for spec in (cfg.get("logger") or {}).values()
        if spec is not None and "_target_" in spec
    ]


def skip_nvml_probe_without_cuda() -> None:
    """Stop torch from looking for NVML at every optimizer step on a machine without CUDA.

    ``lightning_fabric`` sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on import, so that
    ``torch.cuda.is_available()`` cannot poison forked workers. Where NVML is missing, torch then
    tries to ``dlopen`` it again on every call, and optimizers ask on every step: about 4% of an
    MLP GAN step on a CPU. With no CUDA device there is nothing for a fork to poison.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def silence_known_lightning_warnings() -> None:
    """Hide warnings every run would print that ask nothing of the user.

    Lightning 2.6 calls a torch pytree API that torch 2.10+ deprecates. And it warns of every
    module in eval mode at the start of fit, which in every run here means the averaged
    generator and the guiding classifier, frozen on purpose; ``GANModule.on_fit_start`` checks
    the two networks that train instead.
    """
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start")


def build_trainer(cfg: DictConfig, **overrides: Any) -> pl.Trainer:
    skip_nvml_probe_without_cuda()
    silence_known_lightning_warnings()
    return instantiate(
        cfg.trainer, callbacks=build_callbacks(cfg), logger=build_loggers(cfg), **overrides
    )
