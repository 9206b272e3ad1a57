"""Read GAN checkpoints safely, check they fit, and rebuild their networks from them.

A checkpoint is plain data (state dicts, counters, RNG states, the resolved run config), so it is
always loaded with ``weights_only=True``: opening a stranger's file can never run its code. The
config inside names the classes to build, so those are limited to the project's networks too,
and to the network classes of the modules a user lists in ``trusted_networks`` (their own).
"""

from __future__ import annotations

import importlib
import logging
import pickle
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from gan_lightning.errors import CheckpointError
from gan_lightning.networks.init import apply_spectral_norm_
from gan_lightning.rules import Rule, refuse_broken

log = logging.getLogger(__name__)

#: Config keys that decide the shapes in a checkpoint (or its optimizer and scheduler states):
#: a resume that changes one of them cannot load, so it is refused naming the key.
STRUCTURAL_KEYS = (
    "model",
    "tricks.spectral_norm",
    "num_fixed_samples",
    "optim.g._target_",
    "optim.d._target_",
    "scheduler.g._target_",
    "scheduler.d._target_",
)
#: The only classes a file may ask to build (see :func:`instantiate_network`).
NETWORK_PACKAGE = "gan_lightning.networks."
#: Keys expected to change on resume, never reported: more epochs, and where things are read
#: from or written to (a checkpoint resumed into another folder resolves these differently).
RESUME_KEYS = (
    "ckpt_path",
    "trainer.max_epochs",
    "paths",
    "hydra",
    "data.root",
    "trainer.default_root_dir",
    "callbacks",
    "logger",
    "metrics",
)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist (runs keep them in <run>/checkpoints/)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own text suggests retrying with weights_only=False: name the culprit instead.
        culprit = re.search(r"GLOBAL (\S+)", str(error))
        raise CheckpointError(
            f"refused to load {path}: it holds Python objects other than tensors and plain "
            f"containers ({culprit.group(1) if culprit else 'unknown type'}), which could run "
            "code when unpickled. Only load checkpoints written by gan-lightning."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict' entry)")
    return checkpoint


#: Which of two checkpoints at the same step ``ckpt_path=last`` takes: ``last.ckpt`` resumes bit
#: for bit, an epoch file holds the same state, and ``interrupted.ckpt`` stopped inside an epoch.
_PREFERENCE = {"last.ckpt": 2, "interrupted.ckpt": 0}


@dataclass(frozen=True)
class SavedState:
    """A complete checkpoint file and how far its run had got."""

    path: Path
    epoch: int
    global_step: int

    @property
    def mid_epoch(self) -> bool:
        """``interrupted.ckpt`` is written wherever a run stopped; the others at an epoch end."""
        return self.path.name == "interrupted.ckpt"

    def describe(self) -> str:
        """``the end of epoch 1`` / ``in epoch 2 (step 40)``: how far the run had got."""
        if self.mid_epoch:
            return f"stopped in epoch {self.epoch}, step {self.global_step}"
        return f"the end of epoch {self.epoch}"


def read_saved_state(path: Path) -> SavedState | None:
    """The state ``path`` holds, or None when it is not a complete Lightning checkpoint.

    Memory-mapped, so only the small pickled part is read, not every tensor.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return SavedState(path, int(checkpoint["epoch"]), int(checkpoint["global_step"]))
    except Exception as error:  # truncated, empty, foreign: whatever it is, it is not resumable
        log.warning("Skipping %s: not a complete checkpoint (%s)", path, str(error)[:200])
        return None


def newest_complete_checkpoint(folder: str | Path) -> SavedState | None:
    """The most advanced complete checkpoint in ``folder`` (what ``ckpt_path=last`` resumes).

    Ranked by training step, so a newer ``interrupted.ckpt`` wins over ``last.ckpt``, and an
    epoch file wins when a run stopped between writing it and writing ``last.ckpt``. Files that
    do not load (one truncated by an older version, say) are skipped with a warning.
    """
    states = [
        state
        for path in sorted(Path(folder).glob("*.ckpt"))
        if (state := read_saved_state(path)) is not None
    ]
    return max(
        states,
        key=lambda state: (state.global_step, _PREFERENCE.get(state.path.name, 1)),
        default=None,
    )


def submodule_state(checkpoint: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of the module state dict under ``prefix.`` with the prefix removed."""
    start = f"{prefix}."
    return {k[len(start) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(start)}


def state_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, Any]) -> str:
    """One line per kind of mismatch between two state dicts ("" when they fit)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = [
        f"{key}: expected {tuple(expected[key].shape)}, found {tuple(found[key].shape)}"
        for key in sorted(set(expected) & set(found))
        if expected[key].shape != getattr(found[key], "shape", None)
    ]
    details = []
    if wrong_shape:
        details.append(f"shape mismatch in {len(wrong_shape)} tensors, first {wrong_shape[0]}")
    if missing:
        details.append(f"{len(missing)} missing, first {missing[0]!r}")
    if unexpected:
        details.append(f"{len(unexpected)} unexpected, first {unexpected[0]!r}")
    return "; ".join(details)


def load_state_strict(network: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict`` with a mismatch report a user can act on, not a wall of keys."""
    problems = state_mismatch(network.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{where} does not fit {type(network).__name__}: {problems}. "
            "The checkpoint was made with a different architecture or config."
        )
    network.load_state_dict(state)


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        leaves.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return leaves


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == prefix or key.startswith(f"{prefix}.") for prefix in prefixes)


def check_resumable(checkpoint: Mapping[str, Any], config: Mapping[str, Any], path: Path) -> None:
    """Refuse resuming ``checkpoint`` under a config whose networks or optimizers differ.

    Raises :class:`CheckpointError` naming each structural key with the checkpoint's value and
    this run's; other differences (a learning rate, a trick) are only warned about, since a
    resume with changed settings can be intended, but it is no longer an exact continuation.
    """
    saved = _leaves(run_config(checkpoint, path))
    current = _leaves(dict(config))
    # Shallow keys first (model.name before model.generator._target_): they say the most.
    changed = sorted(
        (
            key
            for key in set(saved) | set(current)
            if saved.get(key) != current.get(key) and not _under(key, RESUME_KEYS)
        ),
        key=lambda key: (key.count("."), key),
    )

    def describe(keys: list[str], shown: int = 4) -> str:
        lines = [
            f"{key}: checkpoint has {saved.get(key)!r}, this run has {current.get(key)!r}"
            for key in keys[:shown]
        ]
        more = f"; and {len(keys) - shown} more" if len(keys) > shown else ""
        return "; ".join(lines) + more

    structural = [key for key in changed if _under(key, STRUCTURAL_KEYS)]
    if structural:
        raise CheckpointError(
            f"{path} was trained with a different architecture or config: {describe(structural)}."
            " Resume with the checkpoint's settings, or start a new run without ckpt_path."
        )
    if changed:
        log.warning(
            "Resuming %s with settings that differ from the checkpoint's (the restored optimizer "
            "states keep the checkpoint's learning rates): %s",
            path,
            describe(changed),
        )


def _targets(config: Any) -> Iterator[str]:
    """Every ``_target_`` Hydra would instantiate in ``config``, nested in dicts and lists."""
    if isinstance(config, Mapping):
        if "_target_" in config:
            yield str(config["_target_"])
        children: Iterable[Any] = config.values()
    elif isinstance(config, list | tuple):
        children = config
    else:
        return
    for child in children:
        yield from _targets(child)


#: A dotted Python module name, as ``import`` takes it: ``my_nets``, ``my_project.networks``.
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _is_module_list(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(name, str) and _MODULE_NAME.fullmatch(name) for name in value)
    )


#: The opt-in of ``sample`` and ``evaluate`` for checkpoints of the user's own networks.
TRUSTED_NETWORKS_RULE = Rule(
    "trusted_networks",
    _is_module_list,
    "a list of module names whose network classes a checkpoint may name, e.g. [my_nets] or "
    "[my_nets,my_project.layers] ([] trusts none: only gan-lightning's networks are built)",
)


def checked_trusted_networks(value: Any) -> tuple[str, ...]:
    """``trusted_networks`` as given, refused by name unless it is a list of module names.

    A bare string is refused rather than read as one name: iterated, ``"my_nets"`` would trust
    the modules ``m``, ``y``, ... and anything below them.
    """
    refuse_broken([TRUSTED_NETWORKS_RULE], {TRUSTED_NETWORKS_RULE.key: value})
    return tuple(value)


def _home(module_name: str, homes: Iterable[str]) -> str | None:
    """The package or module among ``homes`` that ``module_name`` is or lies in, else None."""
    for home in homes:
        if module_name == home or module_name.startswith(f"{home}."):
            return home
    return None


def _refusal(target: str, trusted: tuple[str, ...], opt_in: bool) -> str | None:
    """Why a file may not build ``target``, or None when it names a network class it may.

    A prefix check alone would let ``gan_lightning.networks.cgan.torch.save`` through (Hydra
    resolves attributes of attributes), so the named object itself is checked, and only after
    its module passed the prefix check: nothing a stranger's file names is ever imported.
    """
    homes = (NETWORK_PACKAGE.removesuffix("."), *trusted)
    module_name, _, name = target.rpartition(".")
    home = _home(module_name, homes)
    if home is None:
        if not opt_in:
            return (
                f"files may only name the network classes of {NETWORK_PACKAGE}*. Only load files "
                "made by gan-lightning"
            )
        fix = ",".join((*trusted, module_name or target))
        return (
            f"{target} is not one of gan-lightning's networks; if this is your own network and "
            f"you trust this file, add its module: trusted_networks=[{fix}]"
        )
    try:
        found = getattr(importlib.import_module(module_name), name, None)
    except ImportError as error:
        return (
            f"{module_name} is not an importable module ({error}); if it is your own, put the "
            "folder that holds it on PYTHONPATH"
        )
    if found is None:
        return f"{module_name} has no {name} (renamed since the file was written?)"
    if not (
        isinstance(found, type)
        and issubclass(found, nn.Module)
        and _home(found.__module__, homes) is not None
    ):
        return (
            f"{target} is not a network class (a torch.nn.Module subclass) defined in {home}; "
            "a file may name only the network classes of a module, never its functions or "
            "anything it imported from elsewhere"
        )
    return None


def instantiate_network(
    config: Mapping[str, Any], where: str, trusted_networks: Sequence[str] | None = None
) -> Any:
    """``instantiate`` for a network config read from a file, refusing any other target.

    Hydra's blocklist stops ``os.system`` or ``shutil.rmtree`` but not every function with side
    effects (``pathlib.Path.unlink`` runs), so a file may only name gan-lightning's network
    classes, and those of the modules in ``trusted_networks``: the user's opt-in for their own
    networks, which they vouch for by naming them (importing a trusted module runs its code).
    ``instantiate`` then still applies Hydra's own policy. None means the caller offers no
    opt-in (a classifier file), so a refusal does not suggest one.
    """
    trusted = () if trusted_networks is None else checked_trusted_networks(trusted_networks)
    for target in _targets(config):
        refusal = _refusal(target, trusted, opt_in=trusted_networks is not None)
        if refusal is not None:
            raise CheckpointError(f"refused to build {target!r} named in {where}: {refusal}")
    return instantiate(config)


def run_config(checkpoint: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, Any]:
    """The run config saved in ``checkpoint`` (the resolved config of the run that wrote it)."""
    config = checkpoint.get("run_config")
    if not config or "model" not in config:
        raise CheckpointError(f"{path} holds no gan-lightning run config; was it made by `train`?")
    return config


def load_discriminator(
    path: str | Path, needed_for: str = "the discriminator", trusted_networks: Sequence[str] = ()
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained discriminator of a GAN checkpoint, frozen and in eval mode, and its config.

    Built as training built it: from the saved ``model.discriminator`` config, with spectral
    norm when the run had ``tricks.spectral_norm`` (its state then holds the parametrization's
    ``original``/``_u``/``_v`` tensors instead of ``weight``). A file without ``discriminator.*``
    weights is refused naming the file and ``needed_for``, the setting that asked for D (as
    ``load_classifier``'s ``key``), since leaving that setting out is one way to go on.
    ``trusted_networks`` as for :func:`instantiate_network`.
    """
    checkpoint = load_checkpoint(path)
    config = run_config(checkpoint, path)
    state = submodule_state(checkpoint, "discriminator")
    if not state or "discriminator" not in config["model"]:
        raise CheckpointError(
            f"{path} holds no discriminator (no 'discriminator.*' weights in its state_dict, or "
            f"no model.discriminator in its run config), and {needed_for} needs one. Use a "
            "checkpoint that `train` wrote (<run>/checkpoints/last.ckpt keeps D), or leave out "
            f"{needed_for}"
        )
    where = f"{path} [model.discriminator]"
    discriminator = instantiate_network(config["model"]["discriminator"], where, trusted_networks)
    if config.get("tricks", {}).get("spectral_norm"):
        apply_spectral_norm_(discriminator)
    load_state_strict(discriminator, state, f"{path} [discriminator]")
    return discriminator.requires_grad_(False).eval(), config
