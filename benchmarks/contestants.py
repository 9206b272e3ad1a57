"""The three contestants of the throughput benchmark, each timed over the same window of steps.

1. ``framework``: ``Trainer.fit`` built by :mod:`gan_lightning.build` from ``conf/train.yaml``
   with the default callbacks and logger, as ``python -m gan_lightning.train`` runs it.
2. ``plain``: the fastest simple loop a user could write: the whole training split as one float
   tensor on the device, one gather per batch.
3. ``seed``: what the seed projects do: torchvision's MNIST with ToTensor/Normalize per sample,
   batched by a DataLoader.

2 and 3 share one D-then-G step (:class:`PlainGANStep`) with the framework's networks, loss (BCE on
logits), optimizers and precision, so a difference in speed comes from the loop around the step.
Every contestant warms up for ``warmup`` batches and is then timed over ``steps`` batches; on a GPU
the clock is read after a ``synchronize`` at both ends of the window only, never inside it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchvision
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch import Tensor
from torch.utils.data import DataLoader
from torchvision import transforms

from gan_lightning.build import build_gan_module, build_trainer
from gan_lightning.data.datamodule import MNISTDataModule, to_unit_range
from gan_lightning.networks.init import initialize_
from timing import ZERO, Reading

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
_AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


@dataclass(frozen=True)
class Workload:
    """What every contestant trains: one model at one batch size and precision on one device."""

    model: str
    batch_size: int
    precision: str
    device: str = "cpu"
    compile: bool = False
    channels_last: bool = False
    data_root: str | None = None
    #: extra Hydra overrides, for settings around the step (callbacks, metrics, logging)
    overrides: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.model} b{self.batch_size} {self.precision}"


@dataclass
class Timing:
    """One timed window of one contestant."""

    images: int
    seconds: float
    #: CPU time of the whole process over the same window (see :class:`timing.Reading`)
    cpu_seconds: float
    #: framework only: seconds spent between epochs (checkpoints, sample grids, metrics)
    epoch_end_seconds: list[float] | None = None
    #: framework only: batches in a full training epoch, to turn epoch-end time into a share
    batches_per_epoch: int | None = None
    peak_gpu_bytes: int | None = None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def images_per_cpu_s(self) -> float:
        return self.images / self.cpu_seconds


def compose_config(workload: Workload, output_dir: Path, extra: tuple[str, ...] = ()) -> DictConfig:
    """``conf/train.yaml`` composed as ``@hydra.main`` would, with this workload's overrides.

    Like Hydra's own job runner, it registers the Hydra node (for ``${hydra:...}``
    interpolations such as ``paths.output_dir``) and then drops it from the job's config.
    """
    overrides = [
        f"model={workload.model}",
        f"data.batch_size={workload.batch_size}",
        f"trainer.precision={workload.precision}",
        f"trainer.accelerator={workload.device}",
        f"compile={str(workload.compile).lower()}",
        f"channels_last={str(workload.channels_last).lower()}",
        f"hydra.run.dir={output_dir}",
        *([f"data.root={workload.data_root}"] if workload.data_root else []),
        *workload.overrides,
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = cfg.hydra.run.dir
        HydraConfig().set_config(cfg)
        del cfg["hydra"]
    return cfg


# ---------------------------------------------------------------------------------- framework
class WindowTimer(pl.Callback):
    """Times ``steps`` training batches after ``warmup`` ones, then stops the run.

    Work between epochs (checkpoints, sample grids, metrics) is real cost, but not per-step
    throughput: it is left out of the window and timed on its own in ``epoch_end_seconds``, so
    the benchmark can report its share of an epoch. The end of the last epoch is not counted
    there: callbacks do their once-per-run work then (the final metrics on more samples). The
    next epoch's iterator set-up and first fetch stay in the window, as for the other loops.
    """

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup = warmup
        self.steps = steps
        self.batches_done = 0
        self.timed_batches = 0
        self.images = 0
        self.elapsed = ZERO
        self.epoch_end_seconds: list[float] = []
        self._segment_start: Reading | None = None
        self._epoch_end_start: Reading | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch_end_start is None:
            return
        now = Reading.now(pl_module.device)
        self.epoch_end_seconds.append((now - self._epoch_end_start).wall)
        self._epoch_end_start = None
        if self.batches_done >= self.warmup:
            self._segment_start = now

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: object,
        batch: tuple[Tensor, Tensor],
        batch_idx: int,
    ) -> None:
        self.batches_done += 1
        if self.batches_done > self.warmup:
            self.timed_batches += 1
            self.images += batch[0].shape[0]
        done = self.timed_batches >= self.steps
        last_of_epoch = batch_idx + 1 >= trainer.num_training_batches
        if not (done or last_of_epoch or self.batches_done == self.warmup):
            return
        now = Reading.now(pl_module.device)
        if self._segment_start is not None:
            self.elapsed += now - self._segment_start
            self._segment_start = None
        if done:
            trainer.should_stop = True
        elif last_of_epoch:
            self._epoch_end_start = now
        else:  # the warm-up ended inside an epoch
            self._segment_start = now


def run_framework(workload: Workload, warmup: int, steps: int) -> Timing:
    """``gan_lightning.train.train`` step for step, plus the timer, in a throw-away run folder.

    Epochs are cut to half the run (``trainer.limit_train_batches``) so that every run, even on
    the full 60,000 images, crosses one real epoch end whose cost can be timed; the work done
    there does not depend on how many batches came before.
    """
    device = torch.device(workload.device)
    batches_per_epoch = -(-(warmup + steps) // 2)
    with tempfile.TemporaryDirectory(prefix="gan-bench-") as tmp:
        cfg = compose_config(
            workload,
            Path(tmp),
            # max_epochs only bounds the run; the timer stops it once its window is complete.
            extra=(
                f"++trainer.limit_train_batches={batches_per_epoch}",
                f"trainer.max_epochs={warmup + steps}",
            ),
        )
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = hydra.utils.instantiate(cfg.data)
        module = build_gan_module(cfg)
        trainer = build_trainer(cfg)
        timer = WindowTimer(warmup, steps)
        trainer.callbacks.append(timer)
        _reset_gpu_peak(device)
        trainer.fit(module, datamodule=datamodule)
        full_epoch = len(datamodule.train_dataloader())
    return Timing(
        images=timer.images,
        seconds=timer.elapsed.wall,
        cpu_seconds=timer.elapsed.cpu,
        epoch_end_seconds=timer.epoch_end_seconds,
        batches_per_epoch=full_epoch,
        peak_gpu_bytes=_gpu_peak(device),
    )


# ---------------------------------------------------------------------------------- hand-written
class PlainGANStep:
    """One D step then one G step with the framework's networks, loss and optimizers.

    As :class:`~gan_lightning.gan.module.GANModule` does, D's weights are frozen during G's step
    and, with ``tricks.reuse_fakes`` (the default, and pytorch/examples' DCGAN), G's step
    backpropagates through the fakes D just judged; without it D's fakes are drawn without a
    graph and G draws a fresh batch. So both do the same arithmetic. Under mixed precision only
    the forward passes are autocast; the losses are computed in float32.
    """

    def __init__(self, cfg: DictConfig, device: torch.device, compile: bool = False) -> None:
        torch.manual_seed(cfg.seed)
        self.device = device
        self.precision = str(cfg.trainer.precision)
        self.generator = initialize_(hydra.utils.instantiate(cfg.model.generator), cfg.model.init)
        self.discriminator = initialize_(
            hydra.utils.instantiate(cfg.model.discriminator), cfg.model.init
        )
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        for net in (self.generator, self.discriminator):
            net.to(device=device, memory_format=memory_format).train()
            if compile:
                net.compile()
        self.opt_g = hydra.utils.instantiate(cfg.optim.g)(self.generator.parameters())
        self.opt_d = hydra.utils.instantiate(cfg.optim.d)(self.discriminator.parameters())
        self.latent_dim = self.generator.latent_dim
        self.reuse_fakes = bool(cfg.tricks.reuse_fakes)
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range.
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "16-mixed")

    def _autocast(self) -> AbstractContextManager:
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def _optimize(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def __call__(self, real: Tensor) -> None:
        batch_size = real.shape[0]
        ones = torch.ones(batch_size, device=self.device)
        zeros = torch.zeros(batch_size, device=self.device)

        z = torch.randn(batch_size, self.latent_dim, device=self.device)
        with torch.set_grad_enabled(self.reuse_fakes), self._autocast():
            fake = self.generator(z)
        with self._autocast():
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            real_logits.float(), ones
        ) + F.binary_cross_entropy_with_logits(fake_logits.float(), zeros)
        self._optimize(self.opt_d, loss_d)

        self.discriminator.requires_grad_(False)
        if not self.reuse_fakes:
            z = torch.randn(batch_size, self.latent_dim, device=self.device)
            with self._autocast():
                fake = self.generator(z)
        with self._autocast():
            fake_logits = self.discriminator(fake)
        loss_g = F.binary_cross_entropy_with_logits(fake_logits.float(), ones)
        self._optimize(self.opt_g, loss_g)
        self.discriminator.requires_grad_(True)


def time_steps(step: PlainGANStep, batches: Iterator[Tensor], warmup: int, steps: int) -> Timing:
    """Run ``warmup`` untimed steps, then time ``steps`` steps including their data loading."""
    for _ in range(warmup):
        step(next(batches))
    images = 0
    start = Reading.now(step.device)
    for _ in range(steps):
        real = next(batches)
        step(real)
        images += real.shape[0]
    elapsed = Reading.now(step.device) - start
    return Timing(images=images, seconds=elapsed.wall, cpu_seconds=elapsed.cpu)


def load_train_images(cfg: DictConfig, device: torch.device) -> Tensor:
    """The data module's training split, scaled to [-1, 1] once: what ``plain`` samples from."""
    datamodule: MNISTDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return to_unit_range(datamodule.split_tensors("train")[0]).to(device)


def in_memory_batches(images: Tensor, batch_size: int) -> Iterator[Tensor]:
    """Shuffled full batches gathered from one resident tensor, epoch after epoch."""
    count = images.shape[0]
    while True:
        order = torch.randperm(count, device=images.device)
        for start in range(0, count - batch_size + 1, batch_size):
            yield images[order[start : start + batch_size]]


def seed_dataloader(
    root: str, image_size: int, batch_size: int, num_workers: int = 0
) -> DataLoader:
    """The seeds' data path: a PIL image per sample through ToTensor and Normalize."""
    steps = [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]
    if image_size == 32:
        steps.insert(0, transforms.Pad(2))
    dataset = torchvision.datasets.MNIST(
        root, train=True, download=False, transform=transforms.Compose(steps)
    )
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)


def loader_batches(loader: DataLoader, device: torch.device) -> Iterator[Tensor]:
    """The seeds' loop: every batch copied to the device as it comes."""
    while True:
        for images, _ in loader:
            yield images.to(device)


@contextmanager
def standalone_script_env() -> Iterator[None]:
    """Undo, for the hand-written loops, what importing Lightning changed for the whole process.

    ``lightning_fabric`` sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported. Without an NVIDIA
    driver, every ``optimizer.step()`` then retries loading NVML (about 40 us, twice per batch)
    while checking for CUDA graph capture. A script that never imports Lightning does not pay it.
    """
    saved = os.environ.pop(_NVML_CHECK, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[_NVML_CHECK] = saved


def run_plain(workload: Workload, warmup: int, steps: int) -> Timing:
    device = torch.device(workload.device)
    cfg = compose_config(workload, Path(tempfile.gettempdir()))
    images = load_train_images(cfg, device)
    with standalone_script_env():
        step = PlainGANStep(cfg, device, compile=workload.compile)
        _reset_gpu_peak(device)
        timing = time_steps(step, in_memory_batches(images, workload.batch_size), warmup, steps)
    timing.peak_gpu_bytes = _gpu_peak(device)
    return timing


def run_seed(workload: Workload, warmup: int, steps: int, num_workers: int = 0) -> Timing:
    device = torch.device(workload.device)
    cfg = compose_config(workload, Path(tempfile.gettempdir()))
    loader = seed_dataloader(
        str(cfg.data.root), int(cfg.model.image_size), workload.batch_size, num_workers
    )
    with standalone_script_env():
        # The seeds compile nothing; only precision follows the workload.
        step = PlainGANStep(cfg, device)
        _reset_gpu_peak(device)
        timing = time_steps(step, loader_batches(loader, device), warmup, steps)
    timing.peak_gpu_bytes = _gpu_peak(device)
    return timing


def _reset_gpu_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _gpu_peak(device: torch.device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
