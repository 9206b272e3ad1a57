"""Everything a sweep can get wrong that is knowable before its first job starts.

Each check returns the problem as one paragraph naming the key and the fix (``None``: fine);
:class:`~gan_lightning.hydra_callbacks.RunFolderCheck` stops the sweep on the first one. Hydra
itself would notice some of these only at the first trial (a misspelt search-space key) or
never (a sweep whose jobs oversubscribe the CPU, or re-launch the sweep per DDP rank).
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from gan_lightning.config_source import CONFIG_DIR
from gan_lightning.sweeps.jobs import available_cores, joblib_jobs
from gan_lightning.sweeps.objective import DIRECTIONS

INSTALL_HINT = 'pip install -e ".[sweeps]"'

#: Command-line choices that need an optional package: (module to find, what to install).
PLUGINS: dict[str, tuple[str, str]] = {
    "hydra/launcher=joblib": (
        "hydra_plugins.hydra_joblib_launcher",
        "the Hydra plugin hydra-joblib-launcher",
    ),
    "hydra/launcher=submitit_local": (
        "hydra_plugins.hydra_submitit_launcher",
        "the Hydra plugin hydra-submitit-launcher",
    ),
    "hydra/launcher=submitit_slurm": (
        "hydra_plugins.hydra_submitit_launcher",
        "the Hydra plugin hydra-submitit-launcher",
    ),
    "hydra/launcher=slurm": (
        "hydra_plugins.hydra_submitit_launcher",
        "the Hydra plugin hydra-submitit-launcher",
    ),
    # Our sweeper (hydra_plugins/gan_lightning_optuna/) ships with gan-lightning; Optuna does not.
    "hparams_search=optuna": ("optuna", "Optuna (the optuna package)"),
    "hydra/sweeper=gan_optuna": ("optuna", "Optuna (the optuna package)"),
}


def missing_plugin(arguments: Sequence[str]) -> str | None:
    """The problem with the first argument whose optional package is not installed."""
    for argument in arguments:
        choice = argument.lstrip("+~")
        if choice not in PLUGINS:
            continue
        module, package = PLUGINS[choice]
        if importlib.util.find_spec(module) is None:
            return (
                f"{choice} needs {package}, which is not installed. Install the "
                f"sweep packages (pinned to versions that work together) with `{INSTALL_HINT}`, "
                f"or drop {choice} to run the jobs one after another on this machine."
            )
    return None


def check_plugins(arguments: Sequence[str]) -> None:
    """Exit with one message, not Hydra's "Could not find" listing, when a plugin is missing."""
    problem = missing_plugin(arguments)
    if problem:
        sys.exit(f"RunError: {problem}")


def distributed_problem(trainer: Any) -> str | None:
    """Why ``trainer`` (the ``trainer`` config) cannot run as one job of a multirun."""
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, DictConfig | dict):
        strategy = strategy.get("_target_", "")
    devices = trainer.get("devices", 1)
    if isinstance(devices, ListConfig | list):
        devices = len(devices)
    several = str(devices) not in ("1", "None")
    if "ddp" not in str(strategy).lower() and not several:
        return None
    setting = f"trainer.strategy={strategy}" if "ddp" in str(strategy).lower() else ""
    setting = setting or f"trainer.devices={trainer.get('devices')}"
    return (
        f"{setting} (DDP over several devices) cannot run inside a multirun (-m): Lightning "
        "starts the other ranks by running the command line again, which would launch the "
        "whole sweep once more in each of them (hydra#2070). Train with DDP as a single run "
        "(drop -m), or sweep with one device per job: trainer.devices=1, and "
        "hydra/launcher=submitit_local or slurm to run several jobs at once."
    )


def sweep_distributed_problem(config: DictConfig) -> str | None:
    """:func:`distributed_problem` for the sweep's base config and any swept trainer option."""
    problem = distributed_problem(config.trainer)
    if problem:
        return problem
    for key, value in sweep_overrides(config):
        if key == "trainer" and "ddp" in value:
            return distributed_problem({"strategy": "ddp"})
    return None


def launcher_problem(config: DictConfig, cores: int | None = None) -> str | None:
    """joblib asked to run more jobs at once than there are cores."""
    launcher = config.hydra.launcher
    if not str(launcher.get("_target_", "")).endswith("JoblibLauncher"):
        return None
    cores = cores or available_cores()
    n_jobs = joblib_jobs(int(launcher.n_jobs), cores)
    if n_jobs <= cores:
        return None
    return (
        f"hydra.launcher.n_jobs={launcher.n_jobs} runs more jobs at once than the {cores} CPU "
        f"cores this process may use, so they would only slow each other down. Set "
        f"hydra.launcher.n_jobs={cores} or fewer (each job gets cores // n_jobs torch threads)."
    )


def sweep_overrides(config: DictConfig) -> Iterator[tuple[str, str]]:
    """(key, value) of every search-space entry: ``hydra.sweeper.params`` and command-line
    overrides that sweep (``key=a,b``, ``choice(...)``, ``interval(...)``)."""
    params = config.hydra.sweeper.get("params") or {}
    for key, value in params.items():
        yield str(key), str(value)
    parser = OverridesParser.create()
    for line in config.hydra.overrides.task:
        override = parser.parse_override(line)
        if override.is_sweep_override():
            yield override.get_key_element(), line.split("=", 1)[1]


def _leaf_keys(tree: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaf_keys(value, f"{prefix}{key}.")
    elif prefix:
        yield prefix[:-1]


def group_options(group: str, searchpath: Iterable[str] = ()) -> list[str]:
    """The options of one of our config groups (``optim.d`` -> ``adam``, ``sgd``), including
    those in extra ``file://`` folders (the notebooks' presets, a user's ``--config-dir``)."""
    folders = [CONFIG_DIR] + [
        Path(entry.removeprefix("file://")) for entry in searchpath if entry.startswith("file://")
    ]
    return sorted({path.stem for folder in folders for path in (folder / group).glob("*.yaml")})


def _choices(key: str, value: str) -> list[str]:
    override = OverridesParser.create().parse_override(f"{key}={value}")
    if override.is_choice_sweep():
        return [str(choice) for choice in override.sweep_string_iterator()]
    if override.is_sweep_override():  # range or interval: not a group's options
        return []
    return [override.get_value_element_as_str()]


def search_space_problem(config: DictConfig) -> str | None:
    """The first search-space key that no trial could set, with the closest real keys."""
    choices = config.hydra.runtime.choices
    keys = None
    for raw_key, value in sweep_overrides(config):
        key = raw_key.lstrip("+~")
        if raw_key.startswith("+") or key.startswith("hydra"):
            continue  # adds a key on purpose, or Hydra's own (Hydra refuses sweeping those)
        if key in choices:
            # Hydra's sources hold --config-dir; a config composed by hand has hydra.searchpath.
            sources = config.hydra.runtime.get("config_sources") or ()
            folders = [f"file://{source.path}" for source in sources if source.schema == "file"]
            options = group_options(key, [*folders, *(config.hydra.get("searchpath") or ())])
            unknown = [c for c in _choices(key, value) if options and c not in options]
            if unknown:
                return (
                    f"the sweep's search space sets {key}={unknown[0]}, but the {key} group has "
                    f"no option {unknown[0]} (it has {', '.join(options)}). Fix {key} in the "
                    "sweep (the command line or conf/hparams_search/) before any job starts."
                )
            continue
        if OmegaConf.select(config, key, default=_MISSING) is not _MISSING:
            continue
        if keys is None:
            tree = OmegaConf.to_container(config, resolve=False)
            keys = list(_leaf_keys({k: v for k, v in tree.items() if k != "hydra"}))
        close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        return (
            f"the sweep's search space has the key {key}, which this run's config does not "
            f"have, so every trial would fail to compose.{hint} Fix the name in "
            "hydra.sweeper.params (conf/hparams_search/) or on the command line, or write "
            f"+{key}=... to add a new key on purpose."
        )
    return None


def objective_problem(config: DictConfig) -> str | None:
    """An unknown ``optimized_metric``, or a search that could never measure it."""
    metric = config.get("optimized_metric")
    if metric not in DIRECTIONS:
        return (
            f"optimized_metric={metric!r} is not a metric a sweep can optimize; use one of "
            f"{', '.join(DIRECTIONS)}."
        )
    if "optuna" not in str(config.hydra.sweeper.get("_target_", "")).lower():
        return None  # a grid without the classifier still gets its table (status, wall time)
    metrics = (config.get("callbacks") or {}).get("generative_metrics")
    if metrics is None:
        return (
            f"an Optuna search optimizes {metric}, but callbacks.generative_metrics=null turns "
            "the metrics off, so every trial would score the same; drop that override."
        )
    classifier = Path(str(config.metrics.classifier_ckpt))
    if classifier.is_file() or config.metrics.missing_classifier == "train":
        return None
    return (
        f"an Optuna search optimizes {metric}, which needs the classifier, but there is none at "
        f"{classifier} (metrics.classifier_ckpt). Train it once with `python -m "
        "gan_lightning.train_classifier`, point metrics.classifier_ckpt=<file> at one, or set "
        "metrics.missing_classifier=train."
    )


_MISSING = object()
