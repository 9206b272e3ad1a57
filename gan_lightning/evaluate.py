"""Score GAN checkpoints: ``python -m gan_lightning.evaluate ckpt_path=<ckpt> | run_dir=<folder>``.

Every run gets the metrics that training logs (FID, KID, IS, precision/recall, class coverage,
conditional accuracy), on the classifier and data it was trained with unless told otherwise. A
folder of runs (a sweep) becomes one table, best FID first, under which the "real-data floor"
row scores the training images themselves against the test images: what a generator that
reproduced its data perfectly would get. The numbers also go to a JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch import nn

from gan_lightning.classifier import read_classifier_file
from gan_lightning.cli import command
from gan_lightning.data.datamodule import WholeTensorDataModule
from gan_lightning.errors import CheckpointError, EvaluateError, task_wrapper
from gan_lightning.generation import load_generator, resolve_device
from gan_lightning.metrics.suite import (
    MEMORIZATION_METRICS,
    GenerativeMetricSuite,
    add_generated,
    add_real_as_fake,
    build_suite,
)
from gan_lightning.networks.latents import checked_temperature
from gan_lightning.rejection import checked_keep, rejection_discriminator, rejection_sample
from gan_lightning.runs.checkpoints import checked_trusted_networks

#: Table columns: (result key, header, digits); arrows say which way is better.
COLUMNS = (
    ("fid", "FID ↓", 2),
    ("kid", "KID ↓", 4),
    ("is", "IS ↑", 2),
    ("precision", "precision ↑", 3),
    ("recall", "recall ↑", 3),
    ("coverage_kl", "coverage KL ↓", 3),
    ("min_class_fraction", "min class ↑", 3),
    ("cond_acc", "cond. acc ↑", 3),
    ("copy_share_feature", "copies ↓", 3),
)


def find_checkpoints(ckpt_path: str | None, run_dir: str | None) -> tuple[list[Path], Path]:
    """The checkpoints to score and the folder run names are relative to."""
    if (ckpt_path is None) == (run_dir is None):
        raise EvaluateError(
            "give exactly one of ckpt_path=<GAN checkpoint> or run_dir=<folder of runs>"
        )
    if ckpt_path is not None:
        path = Path(to_absolute_path(ckpt_path))
        if not path.is_file():
            raise CheckpointError(f"ckpt_path={ckpt_path}: no checkpoint at {path}")
        return [path], path.parent
    folder = Path(to_absolute_path(run_dir))
    found = sorted(folder.glob("**/checkpoints/last.ckpt"))
    if not found:
        raise EvaluateError(
            f"run_dir={run_dir}: no <run>/checkpoints/last.ckpt below {folder}; point it at a "
            "run folder or a sweep folder, or pass one file with ckpt_path=..."
        )
    return found, folder


def run_name(ckpt: Path, root: Path) -> str:
    """``<run>/checkpoints/x.ckpt`` is named by its run folder (relative to ``root`` in a sweep)."""
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    if run != root and run.is_relative_to(root):
        return str(run.relative_to(root))
    return run.name


def default_output(ckpt_path: str | None, root: Path) -> Path:
    """Next to the checkpoint (``last.metrics.json``), or ``evaluation.json`` in the folder."""
    if ckpt_path is not None:
        return Path(to_absolute_path(ckpt_path)).with_suffix(".metrics.json")
    return root / "evaluation.json"


#: The only ``_target_``s a checkpoint's ``data`` group may name: evaluate reads it from a file.
DATA_PACKAGE = "gan_lightning.data."


def _refuse_foreign_data(data_config: Mapping[str, Any]) -> None:
    """Refuse a ``data`` config from a file that names anything but our data modules.

    Hydra's blocklist stops ``os.system`` but not every function with side effects
    (``pathlib.Path.unlink`` runs), so, as for networks (``runs.checkpoints``), a file may only
    name gan-lightning's own data modules, with no nested targets.
    """
    target = str(data_config.get("_target_", ""))
    nested = any("_target_" in json.dumps(value) for value in data_config.values())
    if not target.startswith(DATA_PACKAGE) or nested:
        raise EvaluateError(
            f"refused to build the data module {target!r} named in a checkpoint's data group: "
            f"files may only name the data modules of {DATA_PACKAGE}*. Only evaluate files "
            "made by gan-lightning."
        )


class _Judges:
    """One data module and one metric suite per (data, classifier): a sweep shares them."""

    def __init__(self, cfg: DictConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.datamodules: dict[str, WholeTensorDataModule] = {}
        self.suites: dict[tuple[str, str], GenerativeMetricSuite] = {}

    def __call__(
        self, run_config: Mapping[str, Any]
    ) -> tuple[GenerativeMetricSuite, WholeTensorDataModule]:
        """The suite and data module that judge a run with this config."""
        data_config = dict(run_config["data"])
        if self.cfg.data_root:
            # A folder or IDX data set moves by its root; data=npz by its (training) file.
            where = "root" if "root" in data_config else "path"
            data_config[where] = to_absolute_path(self.cfg.data_root)
        data_key = json.dumps(data_config, sort_keys=True)
        if data_key not in self.datamodules:
            _refuse_foreign_data(data_config)
            datamodule = instantiate(data_config)
            datamodule.prepare_data()
            datamodule.setup("test")
            self.datamodules[data_key] = datamodule
        datamodule = self.datamodules[data_key]
        if not datamodule.labeled and not self.cfg.classifier_ckpt:
            raise EvaluateError(
                f"{datamodule.source} has no labels, so no classifier was trained on it, and "
                "the metrics judge by one. Pass classifier_ckpt=<weights file> of a classifier "
                "trained on labeled images like these (outputs/classifier/MNIST_classifier.pt "
                "for handwritten digits): FID and precision/recall use its features."
            )

        classifier = self.cfg.classifier_ckpt or run_config.get("metrics", {}).get(
            "classifier_ckpt"
        )
        if classifier is None:
            raise EvaluateError("the run names no classifier; pass classifier_ckpt=<file>")
        classifier = to_absolute_path(classifier)
        if (classifier, data_key) not in self.suites:
            # Checked here so that its messages name this command's key, not train's.
            read_classifier_file(classifier, key="classifier_ckpt")
            self.suites[classifier, data_key] = build_suite(
                classifier, datamodule, device=self.device, batch_size=self.cfg.batch_size
            )
        return self.suites[classifier, data_key], datamodule


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score every checkpoint asked for; print the table, write the JSON, return the report."""
    keep = checked_keep(cfg.rejection)
    trusted = checked_trusted_networks(cfg.trusted_networks)
    temperature = checked_temperature(cfg.temperature)
    checkpoints, root = find_checkpoints(cfg.ckpt_path, cfg.run_dir)
    # Every D first: a sweep with one checkpoint that lacks D is refused before any scoring.
    discriminators = [rejection_discriminator(ckpt, keep, trusted) for ckpt in checkpoints]
    judges = _Judges(cfg, resolve_device(cfg.device))
    scored = []
    first_config: Mapping[str, Any] | None = None
    for ckpt, discriminator in zip(checkpoints, discriminators, strict=True):
        generator, run_config = load_generator(ckpt, cfg.use_ema, trusted, temperature)
        scored.append(score_run(cfg, judges, ckpt, root, generator, run_config, discriminator))
        first_config = first_config or run_config
    # Best plain FID first; a run's rejection row stays right under its plain row.
    scored.sort(key=lambda rows: rows[0]["fid"])
    runs = [row for rows in scored for row in rows]
    settings = {
        "num_samples": cfg.num_samples,
        "seed": cfg.seed,
        "use_ema": cfg.use_ema,
        "temperature": temperature,  # null: each run's own, in its row
    }
    report: dict[str, Any] = {"settings": settings | {"rejection_keep": keep}, "runs": runs}
    if cfg.real_floor and first_config is not None:
        # The first run's data and classifier: a sweep varies the GAN, not what judges it.
        suite, datamodule = judges(first_config)
        suite.reset_fake()
        add_real_as_fake(suite, datamodule, "train", batch_size=cfg.batch_size)
        floor = {k: v for k, v in suite.compute().items() if k not in MEMORIZATION_METRICS}
        report["real_floor"] = {"run": "real data floor (train vs test)", **floor}

    out = Path(to_absolute_path(cfg.out)) if cfg.out else default_output(cfg.ckpt_path, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console = Console()
    console.print(results_table(runs, report.get("real_floor")))
    console.print(f"written to {out}")
    return report


def score_run(
    cfg: DictConfig,
    judges: _Judges,
    ckpt: Path,
    root: Path,
    generator: nn.Module,
    run_config: Mapping[str, Any],
    discriminator: nn.Module | None,
) -> list[dict[str, Any]]:
    """The run's row, and with a discriminator its rejection row: never one without the other.

    Each row says in ``rejection_keep`` whether (and with which share) D chose its samples, so
    the JSON cannot be read as if the rejection figures were the generator's own.
    """
    suite, _ = judges(run_config)
    device = judges.device
    generator.to(device)
    about = {
        "run": run_name(ckpt, root),
        "ckpt_path": str(ckpt),
        "model": run_config["model"].get("name"),
        "temperature": generator.sampling_temperature,
    }
    suite.reset_fake()
    add_generated(suite, generator, cfg.num_samples, batch_size=cfg.batch_size, seed=cfg.seed)
    rows = [{**about, "rejection_keep": None, **suite.compute()}]
    if discriminator is not None:
        keep = float(cfg.rejection.keep)  # checked by evaluate; 1 and 1.0 are one share
        images, labels = rejection_sample(
            generator,
            discriminator.to(device),
            cfg.num_samples,
            cfg.seed,
            keep,
            batch_size=cfg.batch_size,
        )
        suite.reset_fake()
        for start in range(0, images.shape[0], cfg.batch_size):
            batch = slice(start, start + cfg.batch_size)
            suite.update_fake(
                images[batch].to(device), None if labels is None else labels[batch].to(device)
            )
        rows.append({**about, "rejection_keep": keep, **suite.compute()})
    return rows


def results_table(runs: list[dict[str, Any]], floor: dict[str, Any] | None) -> Table:
    table = Table(title="GAN metrics (classifier features; test split as the real set)")
    table.add_column("run", overflow="fold")
    table.add_column("samples", justify="right")
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")

    def cells(row: dict[str, Any]) -> list[str]:
        values = [f"{row[key]:.{digits}f}" if key in row else "-" for key, _, digits in COLUMNS]
        name = row["run"]
        if row.get("temperature", 1.0) != 1.0:
            name = f"{name} (temperature {row['temperature']:g})"
        if row.get("rejection_keep") is not None:
            name = f"{name} + rejection (keep {row['rejection_keep']:g})"
        return [name, f"{row['num_fake']:,}", *values]

    for row in runs:
        table.add_row(*cells(row))
    if any(row.get("rejection_keep") is not None for row in runs):
        table.caption = (
            "+ rejection: the samples the run's discriminator rates most real among "
            "num_samples / keep. Read them against the run's row above: rejection can buy "
            "precision and FID with recall and the rarest digit (docs/rejection.md)."
        )
    if floor is not None:
        table.add_section()
        table.add_row(*cells(floor), style="italic")
    return table


@command(config_name="evaluate")
@task_wrapper
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
