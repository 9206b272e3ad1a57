"""The CUDA path: steps, precisions, compile, resume, sampling, metrics and host syncs on a GPU.

Every test here is marked ``gpu``; ``conftest.py`` skips them where torch sees no CUDA device, so
on a CPU machine this file reports skips only. ``benchmarks/gpu_check.py`` runs them
(``pytest -m gpu``) on a GPU, with ``CUBLAS_WORKSPACE_CONFIG`` set for the deterministic resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from metrics_helpers import make_classifier_file
from omegaconf import DictConfig
from reliability_helpers import compose_run
from test_resume import EXACT, assert_same_run
from test_training_steps import changed, fit, snapshot

from gan_lightning.build import build_gan_module, build_trainer
from gan_lightning.callbacks.metrics import GenerativeMetrics
from gan_lightning.gan.module import GANModule
from gan_lightning.generation import draw_samples, load_generator
from gan_lightning.train import train

pytestmark = pytest.mark.gpu

ACCELERATOR = "gpu"  # trainer.accelerator
DEVICE_TYPE = "cuda"
LOSSES = ["bce", "minimax", "lsgan", "hinge", "wgan_gp"]
PRECISIONS = ["32-true", "bf16-mixed", "16-mixed"]
ON_GPU = f"trainer.accelerator={ACCELERATOR}"


def fit_on_device(
    cfg: DictConfig,
    batches: int = 3,
    module: GANModule | None = None,
    callbacks: list[pl.Callback] | None = None,
) -> GANModule:
    """``batches`` training batches on the GPU at the config's precision: just the step."""
    return fit(cfg, batches, module, callbacks, ACCELERATOR, str(cfg.trainer.precision))


def record_step_logs(module: GANModule, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every step's scalars (``loss/d/real``, ``loss/g``, ...) as the step hands them to logging."""
    steps: list[dict[str, torch.Tensor]] = []
    log_step = module._log_step

    def recording(logs: dict[str, torch.Tensor], batch_size: int) -> None:
        steps.append({name: value.detach().clone() for name, value in logs.items()})
        log_step(logs, batch_size=batch_size)

    monkeypatch.setattr(module, "_log_step", recording)
    return steps


def on_device(net: torch.nn.Module) -> bool:
    return all(p.device.type == DEVICE_TYPE for p in net.parameters())


# ---------------------------------------------------------------------------------- the steps
def test_discriminator_step_changes_only_the_discriminator(compose_train, monkeypatch) -> None:
    cfg = compose_train(["model=dcgan", "data.batch_size=16", ON_GPU])
    module = build_gan_module(cfg)
    monkeypatch.setattr(module, "_generator_step", lambda *args: {})
    g_before, d_before = snapshot(module.generator), snapshot(module.discriminator)
    fit_on_device(cfg, batches=1, module=module)
    assert on_device(module.generator) and on_device(module.discriminator)
    assert changed(d_before, module.discriminator)
    assert not changed(g_before, module.generator)


def test_generator_step_changes_only_the_generator(compose_train, monkeypatch) -> None:
    cfg = compose_train(["model=dcgan", "data.batch_size=16", ON_GPU])
    module = build_gan_module(cfg)
    monkeypatch.setattr(module, "_discriminator_step", lambda *args: {})
    g_before, d_before = snapshot(module.generator), snapshot(module.discriminator)
    fit_on_device(cfg, batches=1, module=module)
    assert changed(g_before, module.generator)
    assert not changed(d_before, module.discriminator)
    assert all(p.grad is None for p in module.discriminator.parameters())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_trains_every_loss_with_finite_values(
    compose_train, monkeypatch, precision: str, loss: str
) -> None:
    """16-mixed goes through Lightning's GradScaler; every logged term must stay finite."""
    overrides = ["model=dcgan", f"loss={loss}", "data.batch_size=16", ON_GPU]
    cfg = compose_train([*overrides, f"trainer.precision={precision}"])
    module = build_gan_module(cfg)
    steps = record_step_logs(module, monkeypatch)
    fit_on_device(cfg, batches=3, module=module)
    assert (module.d_steps, module.g_steps) == (3, 3)
    outputs = {"D(x)"} if loss in ("bce", "minimax", "lsgan") else {"D_score(x)"}
    assert len(steps) == 3 and {"loss/d", "loss/g", *outputs} <= set(steps[0])
    for index, logs in enumerate(steps):
        for name, value in logs.items():
            assert value.device.type == DEVICE_TYPE, name
            assert torch.isfinite(value).all(), f"{name} = {value} at step {index}"


@pytest.mark.parametrize(
    "layout", [["channels_last=true"], ["compile=true", "channels_last=true"]], ids=" ".join
)
def test_channels_last_and_compile_train(compose_train, monkeypatch, layout: list[str]) -> None:
    cfg = compose_train(
        ["model=dcgan", "data.batch_size=16", "trainer.precision=bf16-mixed", ON_GPU, *layout]
    )
    module = build_gan_module(cfg)
    steps = record_step_logs(module, monkeypatch)
    fit_on_device(cfg, batches=4, module=module)
    conv_weights = [p for p in module.parameters() if p.dim() == 4]
    assert conv_weights and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights
    )
    compiled = module.generator._compiled_call_impl is not None
    assert compiled == ("compile=true" in layout)
    assert all(torch.isfinite(torch.stack(list(logs.values()))).all() for logs in steps)


# ---------------------------------------------------------------------------------- resume
def test_resumed_run_on_gpu_matches_the_uninterrupted_run(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """test_resume's exact-resume check, on the GPU (deterministic algorithms on)."""
    exact = [*EXACT, ON_GPU]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    try:
        train(compose_run(whole, tiny_mnist_root, [*exact, "trainer.max_epochs=3"]))
        train(compose_run(parts, tiny_mnist_root, [*exact, "trainer.max_epochs=1"]))
        train(
            compose_run(parts, tiny_mnist_root, [*exact, "trainer.max_epochs=3", "ckpt_path=last"])
        )
    finally:
        # Lightning leaves deterministic algorithms on for the rest of the process; torchmetrics'
        # CUDA bincount (and others) would refuse to run under them.
        torch.use_deterministic_algorithms(False)
    assert_same_run(whole, parts)


# ---------------------------------------------------------------------------------- evaluation
def test_metrics_and_sampling_run_on_the_gpu(compose_train, tmp_path: Path) -> None:
    classifier = make_classifier_file(tmp_path / "classifier.pt")
    cfg = compose_train(
        [
            "model=dcgan",
            "data.batch_size=16",
            ON_GPU,
            f"metrics.classifier_ckpt={classifier}",
            "metrics.num_samples=64",
            "metrics.final_num_samples=128",
            "metrics.batch_size=64",
        ]
    )
    trainer = build_trainer(cfg)
    trainer.fit(build_gan_module(cfg), datamodule=instantiate(cfg.data))
    (metrics,) = [c for c in trainer.callbacks if isinstance(c, GenerativeMetrics)]
    assert metrics.suite is not None and metrics.suite.device.type == DEVICE_TYPE
    assert metrics.final is not None and metrics.final["fid"] > 0
    run = tmp_path / "run"
    assert (run / "metrics.json").is_file() and list((run / "samples").glob("*.png"))

    # The same seed draws the same digits on either device (up to TF32/cuDNN rounding).
    generator, _ = load_generator(run / "checkpoints" / "last.ckpt")
    on_gpu, _ = draw_samples(generator.to(DEVICE_TYPE), 32, seed=3)
    on_cpu, _ = draw_samples(generator.cpu(), 32, seed=3)
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-2, rtol=0)


# ---------------------------------------------------------------------------------- host syncs
@contextmanager
def host_syncs_raise() -> Iterator[None]:
    """Any operation that makes the host wait for the GPU raises inside this block."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


class HostSyncTrap(pl.Callback):
    """From each batch's first hook to the module's ``on_train_batch_end`` (after every
    callback's), any host sync raises: the data fetch is outside (it runs before the hooks), and
    so is Lightning's write of the step scalars to the loggers, which reads them back to the
    host every ``log_every_n_steps`` batches. The first ``warmup`` batches are not trapped
    (lazy initialisation: cuDNN plans, optimizer state)."""

    def __init__(self, warmup: int = 2) -> None:
        self.warmup = warmup
        self.batches = 0
        self.trapped = 0
        self._armed = False

    def attach(self, module: GANModule, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(module, "on_train_batch_end", lambda *args: self.disarm())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.batches >= self.warmup:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            self._armed = True

    def disarm(self) -> None:
        if self._armed:
            torch.cuda.set_sync_debug_mode("default")
            self.trapped += 1
            self._armed = False
        self.batches += 1

    def on_exception(self, trainer, pl_module, exception) -> None:
        torch.cuda.set_sync_debug_mode(
            "default"
        )  # before InterruptCheckpoint saves interrupted.ckpt


def fit_with_trap(
    compose_train: Callable[..., DictConfig], monkeypatch, overrides: list[str], batches: int = 6
) -> HostSyncTrap:
    """The CLI's trainer and callbacks (as ``gan_lightning.train`` builds them), trapped."""
    cfg = compose_train(
        [
            ON_GPU,
            "trainer.max_epochs=1",
            f"trainer.limit_train_batches={batches}",
            "trainer.log_every_n_steps=1",  # every step hands its scalars to self.log_dict
            "data.batch_size=16",
            "callbacks.training_pictures=null",
            *overrides,
        ]
    )
    module = build_gan_module(cfg)
    trainer = build_trainer(cfg)
    trap = HostSyncTrap()
    trap.attach(module, monkeypatch)
    trainer.callbacks.insert(0, trap)
    try:
        trainer.fit(module, datamodule=instantiate(cfg.data))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return trap


@pytest.mark.parametrize(
    "recipe",
    [
        ["model=mlp", "trainer.precision=32-true"],
        ["model=dcgan", "trainer.precision=bf16-mixed", "channels_last=true"],
        ["experiment=best", "trainer.max_time=null"],  # EMA by kimg, reused fakes, bf16
    ],
    ids=lambda recipe: recipe[0],
)
def test_training_steps_never_wait_for_the_gpu(compose_train, monkeypatch, recipe) -> None:
    trap = fit_with_trap(compose_train, monkeypatch, ["guard.check_every_step=false", *recipe])
    assert trap.trapped == 4  # 6 batches, 2 of them warm-up


def test_the_trap_catches_the_per_step_loss_check(compose_train, monkeypatch) -> None:
    """The control: guard.check_every_step=true reads each loss back, and the trap sees it."""
    with pytest.raises(RuntimeError, match="synchroniz"):
        fit_with_trap(compose_train, monkeypatch, ["model=mlp", "guard.check_every_step=true"])


def test_batches_are_gathered_on_the_gpu_without_host_copies(compose_train) -> None:
    cfg = compose_train(["data.batch_size=16"])
    datamodule = instantiate(cfg.data)
    trainer = pl.Trainer(accelerator=ACCELERATOR, devices=1, logger=False)
    datamodule.trainer = trainer
    datamodule.prepare_data()
    datamodule.setup("fit")
    for split in ("train", "val", "test"):
        assert all(t.device.type == DEVICE_TYPE for t in datamodule.split_tensors(split)), split
    batches = iter(datamodule.train_dataloader())
    first = next(batches)  # the epoch's order is copied to the GPU once, here
    with host_syncs_raise():
        rest: list[Any] = list(batches)
    assert rest and all(images.device.type == DEVICE_TYPE for images, _ in [first, *rest])
    assert all(labels.device.type == DEVICE_TYPE for _, labels in rest)
