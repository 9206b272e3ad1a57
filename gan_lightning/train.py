"""Train a GAN: ``python -m gan_lightning.train [group=option ...] [key=value ...]``.

Thin on purpose (lightning-hydra-template's shape): compose, check, seed, build, fit, and return
the metric a sweeper optimizes. Everything else lives in the modules it builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gan_lightning.build import build_gan_module, build_trainer

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


class RunError(RuntimeError):
    """A problem with the run as asked for (paths, checkpoints), reported before any work."""


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``last`` means this run folder's ``checkpoints/last.ckpt``; any other path must exist."""
    if ckpt_path is None:
        existing = sorted((output_dir / "checkpoints").glob("*.ckpt"))
        if existing:
            raise RunError(
                f"{output_dir} already holds a run ({existing[-1].name}); nothing is overwritten. "
                "Resume it with ckpt_path=last, or start a new run in another folder "
                "(leave hydra.run.dir unset to get a fresh timestamped one)."
            )
        return None
    path = output_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        hint = (
            "pass the old run's folder too: hydra.run.dir=<run folder> ckpt_path=last"
            if ckpt_path == "last"
            else "check the path (checkpoints live in <run folder>/checkpoints/)"
        )
        raise RunError(f"ckpt_path={ckpt_path}: no checkpoint at {path}; {hint}")
    return str(path)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit the GAN described by ``cfg``; returns the final callback metrics."""
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_gan_module(cfg)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    objective = cfg.get("optimized_metric")
    if objective and HydraConfig.get().mode.name == "MULTIRUN":
        return metrics.get(objective)
    return None


if __name__ == "__main__":
    main()
