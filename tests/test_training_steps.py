"""The GAN step on every architecture and loss, the update schedules, and what each step touches."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from reliability_helpers import PoisonBatch
from torch.nn.utils import parametrize

from gan_lightning.build import build_gan_module
from gan_lightning.errors import ConfigError, DivergenceError
from gan_lightning.gan.compatibility import check_compatible
from gan_lightning.gan.module import GANModule
from gan_lightning.gan.tricks import Tricks

MODELS = ["mlp", "dcgan", "dcgan7", "fc", "cnn", "cgan", "lean", "lean_cgan"]
LOSSES = ["bce", "minimax", "lsgan", "hinge", "wgan_gp"]


def fit(
    cfg,
    batches: int = 2,
    module: GANModule | None = None,
    callbacks: list | None = None,
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> GANModule:
    """Run ``batches`` training batches with no logger or callbacks: just the step.

    ``tests/test_gpu.py`` runs it on the GPU (``accelerator="gpu"``) at the config's precision.
    """
    module = module or build_gan_module(cfg)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        logger=False,
        callbacks=callbacks or [],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=instantiate(cfg.data))
    return module


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k].to(v.device), v) for k, v in net.named_parameters())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_architecture_trains_with_every_loss(compose_train, model: str, loss: str) -> None:
    overrides = [f"model={model}", f"loss={loss}", "data.batch_size=8"]
    if model == "cgan":
        # Without a classifier, conditional D keeps the label information in the game.
        overrides.append("model.discriminator.conditioning=projection")
    cfg = compose_train(overrides)
    module = build_gan_module(cfg)
    g_before, d_before = snapshot(module.generator), snapshot(module.discriminator)
    fit(cfg, batches=1, module=module)
    assert module.d_steps == 1 and module.g_steps == 1
    # Finite weights need no assert: the epoch end raises DivergenceError on NaN/inf weights.
    assert changed(g_before, module.generator) and changed(d_before, module.discriminator)


def test_discriminator_step_changes_only_the_discriminator(compose_train, monkeypatch) -> None:
    cfg = compose_train(["model=mlp", "data.batch_size=16"])
    module = build_gan_module(cfg)
    monkeypatch.setattr(module, "_generator_step", lambda *args: {})
    g_before, d_before = snapshot(module.generator), snapshot(module.discriminator)
    fit(cfg, batches=1, module=module)
    assert changed(d_before, module.discriminator)
    assert not changed(g_before, module.generator)


def test_generator_step_changes_only_the_generator(compose_train, monkeypatch) -> None:
    cfg = compose_train(["model=mlp", "data.batch_size=16"])
    module = build_gan_module(cfg)
    monkeypatch.setattr(module, "_discriminator_step", lambda *args: {})
    g_before, d_before = snapshot(module.generator), snapshot(module.discriminator)
    fit(cfg, batches=1, module=module)
    assert changed(g_before, module.generator)
    # D's weights and its BatchNorm/Dropout-free parameters are untouched by the G step.
    assert not changed(d_before, module.discriminator)
    assert all(p.grad is None for p in module.discriminator.parameters())


@pytest.mark.parametrize(
    ("tricks", "d_steps", "g_steps"),
    [
        ([], 6, 6),
        (["tricks.d_every_n_batches=2"], 3, 6),  # seed 000
        (["tricks.g_steps_per_d=2"], 6, 12),  # seed 002
        (["tricks.n_critic=3"], 6, 2),  # WGAN
    ],
)
def test_update_schedules_step_each_network_as_configured(
    compose_train, tricks: list[str], d_steps: int, g_steps: int
) -> None:
    module = fit(compose_train(["model=mlp", "data.batch_size=8", *tricks]), batches=6)
    assert (module.d_steps, module.g_steps) == (d_steps, g_steps)


class _RecordDiscriminator(pl.Callback):
    """Snapshots D around every batch, to see which batches stepped it."""

    def __init__(self) -> None:
        self.stepped: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._before = snapshot(pl_module.discriminator)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.stepped.append(changed(self._before, pl_module.discriminator))


def test_d_is_not_stepped_on_skipped_batches(compose_train) -> None:
    cfg = compose_train(["model=mlp", "data.batch_size=8", "tricks.d_every_n_batches=2"])
    recorder = _RecordDiscriminator()
    fit(cfg, batches=4, callbacks=[recorder])
    assert recorder.stepped == [True, False, True, False]


def test_all_tricks_together_train_and_keep_an_ema_generator(compose_train) -> None:
    cfg = compose_train(
        [
            "model=dcgan7",
            "data.batch_size=8",
            "tricks.label_smoothing.real=[0.7,1.0]",
            "tricks.label_smoothing.fake=[0.0,0.3]",
            "tricks.label_flip_prob=0.1",
            "tricks.instance_noise.std=0.1",
            "tricks.instance_noise.anneal_steps=10",
            "tricks.ema_decay=0.9",
            "tricks.spectral_norm=true",
            "tricks.r1_gamma=1.0",
            "tricks.diffaugment=[translation,cutout]",
        ]
    )
    module = fit(cfg, batches=2)
    assert module.g_ema is not None
    live, averaged = snapshot(module.generator), snapshot(module.g_ema)
    assert any(not torch.equal(live[k], averaged[k]) for k in live)
    assert any("parametrizations" in name for name, _ in module.discriminator.named_parameters())


def test_hinge_loss_refuses_label_smoothing(compose_train) -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        build_gan_module(compose_train(["loss=hinge", "tricks.label_smoothing.real=0.9"]))


def test_classifier_guidance_needs_a_conditional_generator(compose_train) -> None:
    parts = _module_parts(compose_train(["model=mlp"]))
    tricks = Tricks.from_config({"classifier_guidance": {"alpha": 0.5}})
    with pytest.raises(ConfigError, match="conditional generator"):
        check_compatible(parts["loss"], tricks, parts["generator"], parts["discriminator"], None)


def test_lr_decay_and_a_scheduler_are_refused_together(compose_train) -> None:
    cfg = compose_train(["tricks.lr_decay_to=0.1", "scheduler.g=step"])
    with pytest.raises(ConfigError, match="lr_decay_to=0.1 and scheduler.g / scheduler.d"):
        build_gan_module(cfg)


def test_the_builder_initializes_both_networks_and_wraps_d_in_spectral_norm(compose_train) -> None:
    module = build_gan_module(compose_train(["model=dcgan", "tricks.spectral_norm=true"]))
    for net in (module.generator, module.discriminator):
        scales = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        # model=dcgan's init draws BatchNorm scales from N(1, 0.02); PyTorch's own sets them to 1.
        assert scales and not any(torch.all(scale == 1) for scale in scales)
    layers = [m for m in module.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)


def test_the_module_trains_the_networks_it_is_given_as_they_are(compose_train) -> None:
    parts = _module_parts(compose_train(["model=dcgan"]))
    g_before, d_before = snapshot(parts["generator"]), snapshot(parts["discriminator"])
    module = GANModule(**parts, tricks=Tricks.from_config({"spectral_norm": True}))
    assert not changed(g_before, module.generator) and not changed(d_before, module.discriminator)
    assert not any(parametrize.is_parametrized(m) for m in module.discriminator.modules())


def test_a_step_that_stops_leaves_no_network_frozen(compose_train) -> None:
    """``toggled_optimizer`` unfreezes G even when D's step raises (here on a NaN loss), so a
    caller that catches the error holds a module that still trains both networks."""
    cfg = compose_train(["model=mlp", "data.batch_size=8"])
    module = build_gan_module(cfg)
    with pytest.raises(DivergenceError, match="The discriminator loss is nan"):
        fit(cfg, batches=2, module=module, callbacks=[PoisonBatch(epoch=0, batch_idx=1)])
    assert all(p.requires_grad for p in module.generator.parameters())
    assert all(p.requires_grad for p in module.discriminator.parameters())


def _module_parts(cfg) -> dict:
    return {
        "generator": instantiate(cfg.model.generator),
        "discriminator": instantiate(cfg.model.discriminator),
        "g_optimizer": instantiate(cfg.optim.g),
        "d_optimizer": instantiate(cfg.optim.d),
        "loss": instantiate(cfg.loss),
    }


def test_channels_last_keeps_conv_weights_and_batches_in_nhwc(compose_train) -> None:
    cfg = compose_train(["model=dcgan", "data.batch_size=8", "channels_last=true"])
    seen = []

    class RecordLayout(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            module.discriminator.register_forward_pre_hook(
                lambda _, inputs: seen.append(inputs[0].is_contiguous(memory_format=NHWC))
            )

    NHWC = torch.channels_last
    module = fit(cfg, batches=1, callbacks=[RecordLayout()])
    conv_weights = [p for p in module.parameters() if p.dim() == 4]
    assert conv_weights and all(p.is_contiguous(memory_format=NHWC) for p in conv_weights)
    assert seen and all(seen)  # real and fake D inputs alike


def test_only_a_training_network_left_in_eval_mode_is_warned_of(compose_train) -> None:
    # The averaged G is frozen on purpose and says nothing; a generator left in eval mode
    # (its BatchNorm would train on running statistics) is named.
    from gan_lightning.build import silence_known_lightning_warnings

    cfg = compose_train(["experiment=best", "trainer.max_time=null"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_lightning_warnings()
        fit(cfg, batches=1)
    assert not [w for w in caught if "eval mode" in str(w.message)]
    module = build_gan_module(cfg)
    module.generator.eval()
    with pytest.warns(UserWarning, match=r"\d+ module\(s\) of the generator are in eval mode"):
        fit(cfg, batches=1, module=module)
