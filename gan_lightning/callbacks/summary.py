"""A one-screen summary at the start of a run, its parameter table, and its hyper-parameters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.tensorboard.summary import hparams

from gan_lightning.callbacks.tensorboard import tensorboard_logger
from gan_lightning.compat import event_writer

#: Groups whose values describe the experiment (paths and Hydra internals are left out).
HPARAM_GROUPS = ("model", "optim", "scheduler", "loss", "tricks", "data", "trainer")


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def parameter_table(networks: Mapping[str, nn.Module]) -> str:
    """Markdown table of parameter counts (seed 003 compares its architectures this way)."""
    rows = [(name, count_parameters(net)) for name, net in networks.items()]
    lines = ["| network | parameters |", "|:--|--:|"]
    lines += [f"| {name} | {count:,} |" for name, count in rows]
    lines.append(f"| **total** | **{sum(count for _, count in rows):,}** |")
    return "\n".join(lines) + "\n"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat


def write_hparams(
    logger: TensorBoardLogger, params: dict[str, Any], metric_names: list[str]
) -> None:
    """Declare hyper-parameters and the metric tags the HPARAMS tab should show for them.

    ``TensorBoardLogger.log_hyperparams(params, metrics)`` would also write each metric as a
    scalar at step 0, leaving a fake first point on real curves; writing only the hparams
    summaries lets the plugin pick up the values that ``self.log`` writes later under these tags.
    """
    experiment, session_start, session_end = hparams(params, {name: 0.0 for name in metric_names})
    writer = event_writer(logger.experiment)
    for summary in (experiment, session_start, session_end):
        writer.add_summary(summary)


class RunSummary(pl.Callback):
    """Prints model, parameter counts, data sizes and the output folder; saves ``parameters.md``.

    Runs at ``on_fit_start`` (after the data module's setup) so the data sizes are real counts,
    never an assumed 60,000.
    """

    def __init__(self, metric_names: list[str] | None = None) -> None:
        self.metric_names = list(metric_names or [])

    @rank_zero_only
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        config = pl_module.run_config
        networks = {"generator": pl_module.generator, "discriminator": pl_module.discriminator}
        output_dir = Path(trainer.default_root_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "parameters.md").write_text(parameter_table(networks))

        table = Table(title="gan-lightning run", show_header=False, title_justify="left")
        table.add_column(style="bold cyan")
        table.add_column()
        model = config.get("model", {})
        table.add_row(
            "model",
            f"{model.get('name')} ({model.get('image_size')}px, z={model.get('latent_dim')})",
        )
        for name, net in networks.items():
            table.add_row(name, f"{type(net).__name__}: {count_parameters(net):,} parameters")
        table.add_row("loss", repr(pl_module.loss))
        datamodule = trainer.datamodule
        if datamodule is not None:
            table.add_row(
                "data",
                f"{config.get('data', {}).get('dataset')}: {datamodule.num_train:,} train / "
                f"{datamodule.num_val:,} val / {datamodule.num_test:,} test images, "
                f"batch {datamodule.batch_size}",
            )
        table.add_row("device", f"{trainer.strategy.root_device} ({trainer.precision})")
        table.add_row("epochs", str(trainer.max_epochs))
        table.add_row("output", str(output_dir))
        Console().print(table)

        logger = tensorboard_logger(trainer)
        if logger is not None:
            params = flatten({k: config[k] for k in HPARAM_GROUPS if k in config})
            params["seed"] = config.get("seed")
            params["temperature"] = config.get("temperature", 1.0)  # every metric depends on it
            write_hparams(logger, params, self.metric_names)
