"""Read GAN checkpoints safely and rebuild their networks from the config saved inside.

A checkpoint is plain data (state dicts, counters, the resolved run config), so it is always
loaded with ``weights_only=True``: opening a stranger's file can never run its code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from gan_lightning.ema import sampling_copy


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, unsafe or does not match what was asked."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist (runs keep them in <run>/checkpoints/)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {path}: it holds Python objects other than tensors and plain "
            f"containers, which could run code when unpickled ({str(error).splitlines()[0]}). "
            "Only load checkpoints written by gan-lightning from sources you trust."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict' entry)")
    return checkpoint


def submodule_state(checkpoint: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of the module state dict under ``prefix.`` with the prefix removed."""
    start = f"{prefix}."
    return {k[len(start) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(start)}


def load_state_strict(network: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict`` with a mismatch report a user can act on, not a wall of keys."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{key}: expected {tuple(expected[key].shape)}, found {tuple(state[key].shape)}"
        for key in sorted(set(expected) & set(state))
        if expected[key].shape != state[key].shape
    ]
    if missing or unexpected or wrong_shape:
        details = []
        if wrong_shape:
            details.append(f"shape mismatch in {len(wrong_shape)} tensors, first {wrong_shape[0]}")
        if missing:
            details.append(f"{len(missing)} missing, first {missing[0]!r}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected, first {unexpected[0]!r}")
        raise CheckpointError(
            f"{where} does not fit {type(network).__name__}: {'; '.join(details)}. "
            "The checkpoint was made with a different architecture or config."
        )
    network.load_state_dict(state)


def run_config(checkpoint: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, Any]:
    config = checkpoint.get("run_config")
    if not config or "model" not in config:
        raise CheckpointError(f"{path} holds no gan-lightning run config; was it made by `train`?")
    return config


def load_generator(path: str | Path, use_ema: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The sampling generator of a GAN checkpoint (EMA weights when present) and its config.

    The returned network is in eval mode with BatchNorm statistics recomputed for its weights.
    """
    checkpoint = load_checkpoint(path)
    config = run_config(checkpoint, path)
    generator = instantiate(config["model"]["generator"])
    prefix = "g_ema" if use_ema and submodule_state(checkpoint, "g_ema") else "generator"
    load_state_strict(generator, submodule_state(checkpoint, prefix), f"{path} [{prefix}]")
    return sampling_copy(generator), config
