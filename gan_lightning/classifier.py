"""The digit classifier as a LightningModule, its plain-data weights file, and loading it back.

The classifier is the judge of every GAN metric (FID/KID/precision/recall on its penultimate
features, IS/coverage/conditional accuracy on its logits) and the teacher of seed 000's
classifier-guided generator. It trains like any image classifier (automatic optimization) on
the GAN's own data module; the network normalizes its [-1, 1] inputs itself
(:class:`~gan_lightning.networks.digit_cnn.MNISTClassifier`), so the data is shared unchanged.

What GAN runs load is not Lightning's checkpoint but a small weights file (state dict, network
config, test accuracy, dataset), read with ``weights_only=True`` so it can never run code.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics.classification import MulticlassAccuracy

from gan_lightning.errors import CheckpointError, MissingClassifierError
from gan_lightning.runs.checkpoint_io import atomic_save
from gan_lightning.runs.checkpoints import instantiate_network, load_state_strict

#: The command that writes the weights file GAN runs look for; every error about it names this.
TRAIN_COMMAND = "python -m gan_lightning.train_classifier"

OptimizerFactory = Callable[..., Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


@dataclass(frozen=True)
class AffineAugment:
    """A random rotation, zoom and shift per image, applied to whole batch tensors.

    With 6,309 training digits the classifier overfits without augmentation; small affine
    jitter is the classic MNIST cure and keeps digits recognisable (no flips: a mirrored 2 is
    not a 2). It runs on the batch tensor with ``affine_grid``/``grid_sample``, on whatever
    device the batch is on, instead of per-image PIL transforms.

    Args:
        rotation: largest rotation either way, in degrees.
        translate: largest shift either way, as a fraction of the image side.
        scale: range of the zoom factor.
    """

    rotation: float = 10.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(self.scale))  # YAML gives a list
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"augment.rotation={self.rotation} must be in [0, 180] degrees")
        if not 0 <= self.translate < 0.5:
            raise ValueError(f"augment.translate={self.translate} must be in [0, 0.5)")
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(
                f"augment.scale={list(self.scale)} must be [low, high], 0 < low <= high"
            )

    def __call__(self, images: Tensor) -> Tensor:
        uniform = torch.rand(images.shape[0], 4, device=images.device, dtype=images.dtype) * 2 - 1
        angle = uniform[:, 0] * math.radians(self.rotation)
        low, high = self.scale
        zoom = low + (high - low) * (uniform[:, 1] + 1) / 2
        # affine_grid maps output to input coordinates, hence the inverse zoom; coordinates
        # span [-1, 1], so a shift of `translate` image sides is 2 * translate in them.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        shift = uniform[:, 2:] * 2 * self.translate
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        # grid_sample fills outside pixels with 0; shifting by one makes that the -1 background.
        return F.grid_sample(images + 1, grid, align_corners=False) - 1


class ClassifierModule(pl.LightningModule):
    """Trains a digit classifier with cross-entropy; logs loss and accuracy per split.

    Args:
        network: the classifier, e.g. :class:`~gan_lightning.networks.digit_cnn.MNISTClassifier`
            (any module with ``features``/``head``/``feature_dim``/``num_classes`` serves metrics).
        optimizer: partial taking the parameters.
        scheduler: optional LR-scheduler partial, stepped once per epoch.
        augment: batch augmentation for training images only.
        run_config: the resolved run config as plain containers, saved in each checkpoint.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        augment: Callable[[Tensor], Tensor] | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.augment = augment
        self.run_config = dict(run_config or {})
        # One accuracy object per split: each accumulates over its own split's epoch.
        self.train_accuracy = MulticlassAccuracy(network.num_classes, average="micro")
        self.val_accuracy = MulticlassAccuracy(network.num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(network.num_classes, average="micro")

    def forward(self, images: Tensor) -> Tensor:
        return self.network(images)

    def _step(self, batch: tuple[Tensor, Tensor], split: str) -> Tensor:
        images, labels = batch
        if split == "train" and self.augment is not None:
            images = self.augment(images)
        logits = self.network(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = getattr(self, f"{split}_accuracy")
        accuracy(logits, labels)
        logged = {"on_epoch": True, "batch_size": labels.shape[0]}
        self.log(f"{split}/loss", loss, on_step=split == "train", **logged)
        self.log(f"{split}/acc", accuracy, on_step=False, prog_bar=True, **logged)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.network.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["run_config"] = self.run_config


# ---------------------------------------------------------------------- the weights file
def save_classifier(
    path: str | Path,
    network: nn.Module,
    network_config: Mapping[str, Any],
    *,
    test_accuracy: float | None,
    dataset: str,
) -> Path:
    """Write the weights file GAN runs load (plain data only), atomically.

    Written to a temporary file in the same folder, fsynced and renamed (:func:`atomic_save`),
    so a GAN run starting meanwhile, a full disk or a kill reads or leaves either the old file
    or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "network": dict(network_config),
        "test_accuracy": test_accuracy,
        "dataset": dataset,
    }
    return atomic_save(payload, path)


def read_classifier_file(path: str | Path, key: str = "metrics.classifier_ckpt") -> dict[str, Any]:
    """The weights file as a dict, refusing anything that is not plain data.

    ``key`` is the config key that names the file in the command at hand (``train`` reads
    ``metrics.classifier_ckpt``, ``evaluate`` and ``sample`` read ``classifier_ckpt``).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingClassifierError(
            f"no classifier weights at {path} ({key}). Train one with `{TRAIN_COMMAND}` (it "
            f"writes there by default), or point {key}=<file> at an existing one."
        )
    if not zipfile.is_zipfile(path):  # torch.save's format; anything else is not ours
        raise CheckpointError(
            f"classifier {path} ({key}) is not a readable PyTorch file (not written by "
            f"torch.save); retrain it with `{TRAIN_COMMAND}` or point {key}=<file> elsewhere."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load classifier {path} ({key}): it holds Python objects other than "
            f"tensors and plain containers ({str(error).splitlines()[0]}). Retrain it with "
            f"`{TRAIN_COMMAND}`."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(
            f"classifier {path} ({key}) is not a readable PyTorch file: {error}"
        ) from error
    if not isinstance(payload, dict) or not {"state_dict", "network"} <= payload.keys():
        raise CheckpointError(
            f"{path} ({key}) is not a classifier weights file (expected 'state_dict' and "
            f"'network' entries, as `{TRAIN_COMMAND}` writes; a Lightning .ckpt is not one)."
        )
    return payload


def load_classifier(path: str | Path, key: str = "metrics.classifier_ckpt") -> nn.Module:
    """The classifier of a weights file, frozen: eval mode, no gradients for its parameters.

    Gradients still flow *through* it to its inputs, which is what classifier guidance needs.
    ``key`` names the file's config key in error messages (see :func:`read_classifier_file`).
    """
    payload = read_classifier_file(path, key)
    # Building the network draws its (then overwritten) initial weights from the global random
    # stream; forked, so a seeded run trains the same with metrics on or off.
    with torch.random.fork_rng(devices=[]):
        # A crafted file must not name arbitrary callables: only gan-lightning's network classes.
        network = instantiate_network(payload["network"], f"classifier {path}")
    load_state_strict(network, payload["state_dict"], f"classifier {path}")
    return network.eval().requires_grad_(False)


def _quote(value: str | Path) -> str:
    """A Hydra override value that survives spaces and commas in paths."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def launch_training(
    classifier_ckpt: str | Path,
    data_root: str | Path,
    dataset: str,
    overrides: Sequence[str] = (),
) -> None:
    """Run this command in a fresh process, as a user would, writing ``classifier_ckpt``.

    A separate process keeps the classifier's Hydra config, seeding and trainer apart from the
    GAN run that asked for it (``metrics.missing_classifier=train``); its run folder goes next
    to the weights file so the GAN run's folder stays its own.
    """
    classifier_ckpt = Path(classifier_ckpt)
    run_dir = classifier_ckpt.parent / "runs" / time.strftime("%Y-%m-%d_%H-%M-%S")
    command = [
        sys.executable,
        "-m",
        "gan_lightning.train_classifier",
        f"metrics.classifier_ckpt={_quote(classifier_ckpt)}",
        f"data.root={_quote(data_root)}",
        f"data.dataset={dataset}",
        f"hydra.run.dir={_quote(run_dir)}",
        *overrides,
    ]
    subprocess.run(command, check=True)
