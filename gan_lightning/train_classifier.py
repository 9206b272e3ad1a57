"""Train the metrics classifier: ``python -m gan_lightning.train_classifier [key=value ...]``.

Same shape as ``train``: compose, seed, build, fit, test. On top it writes the weights file that
GAN runs find by config (``metrics.classifier_ckpt``), after testing the final weights on the
official test images; their accuracy goes into the file and the summary.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from gan_lightning.build import build_trainer, plain
from gan_lightning.classifier import AffineAugment, ClassifierModule, save_classifier
from gan_lightning.cli import command
from gan_lightning.data.datamodule import WholeTensorDataModule
from gan_lightning.errors import task_wrapper


def network_config(cfg: DictConfig, datamodule: WholeTensorDataModule) -> dict[str, Any]:
    """``cfg.network`` with the data's class and channel counts: a classifier of a folder with
    3 classes of RGB images has 3 outputs and takes 3 channels. Saved in the weights file, so
    the GAN runs that load it build the same network."""
    datamodule.require_labels("Training a classifier")
    return {
        **plain(cfg.network),
        "num_classes": datamodule.num_classes,
        "channels": datamodule.channels,
    }


def build_classifier_module(cfg: DictConfig, network: dict[str, Any]) -> ClassifierModule:
    return ClassifierModule(
        network=instantiate(network),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        augment=AffineAugment(**plain(cfg.augment)) if cfg.get("augment") else None,
        run_config=plain(cfg),
    )


def train_classifier(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test, save the weights file; returns the test accuracy, fit time and file path."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    network = network_config(cfg, datamodule)
    module = build_classifier_module(cfg, network)
    trainer = build_trainer(cfg)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    # The final weights: after a cosine decay to zero they are the settled ones, while 315
    # validation images (one image = 0.3%) are too few to pick a better epoch reliably.
    (results,) = trainer.test(module, datamodule=datamodule)
    test_accuracy = float(results["test/acc"])
    path = save_classifier(
        cfg.metrics.classifier_ckpt,
        module.network,
        network,
        test_accuracy=test_accuracy,
        dataset=cfg.data.dataset,
    )
    Console().print(
        f"[bold]classifier[/bold]: test accuracy [bold green]{test_accuracy:.2%}[/bold green] "
        f"on {datamodule.num_test:,} {cfg.data.dataset} test images after "
        f"{trainer.current_epoch} epochs on {datamodule.num_train:,} images "
        f"({fit_seconds / 60:.1f} min); weights: {path}"
    )
    return {"test/acc": test_accuracy, "fit_seconds": fit_seconds, "weights": str(path)}


@command(config_name="classifier")
@task_wrapper
def main(cfg: DictConfig) -> float:
    return train_classifier(cfg)["test/acc"]


if __name__ == "__main__":
    main()
