"""Every command's entry point: ``@hydra.main`` on the packaged configs, behind checks of the
command line that run before Hydra composes anything.

An unknown option of a config group (``model=nosuchmodel``) makes Hydra end its message with its
whole config search path, which helps nobody who mistyped a model name; it is refused here
first, in one line naming the option and the available ones. A key that was renamed is refused
the same way, naming its new name, and a sweep plugin that is not installed, naming the package.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig

from gan_lightning.config_source import CONFIG_DIR, CONFIG_PATH
from gan_lightning.sweeps.preflight import check_plugins

#: Old key -> new key. The callbacks each got one job (the collapse warning went to the metrics
#: callback, the TensorBoard purge to the TensorBoard callback).
RENAMED_KEYS = {
    "callbacks.run_guard.min_class_fraction": "guard.min_class_fraction",
    "callbacks.run_guard": "callbacks.interrupt_checkpoint",
    "callbacks.tensorboard_layout": "callbacks.tensorboard",
}


def _overrides(arguments: Sequence[str]) -> list[Override]:
    """The command line's overrides, parsed; none when malformed (Hydra's own error says why)."""
    overrides = [
        arg for arg in arguments if arg.startswith("~") or (not arg.startswith("-") and "=" in arg)
    ]
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return []


def renamed_key(arguments: Sequence[str]) -> str | None:
    """The message for the first override of a renamed key, else None."""
    for override in _overrides(arguments):
        key = override.key_or_group
        for old, new in RENAMED_KEYS.items():
            if key == old or key.startswith(f"{old}."):
                return f"{old} is now {new}: use {new}{key.removeprefix(old)}."
    return None


def _group_choices(arguments: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """(group, options asked for) of every ``group=option`` override on the command line."""
    for override in _overrides(arguments):
        if override.is_delete() or override.key_or_group.startswith("hydra"):
            continue  # hydra/launcher=... and friends come from Hydra's plugins
        try:
            if override.is_sweep_override():
                values = list(override.sweep_string_iterator())
            else:
                values = [override.value()]
        except Exception:  # glob(...) and the like need Hydra's config loader: leave to Hydra
            continue
        yield override.key_or_group, [str(value) for value in values if value is not None]


def option_folders(config_dir: str | Path, arguments: Sequence[str]) -> list[Path] | None:
    """The folders whose YAML files are the options of the config groups: ``config_dir``, then
    the user's own (``--config-dir``, ``file://`` entries of ``hydra.searchpath``), relative to
    the current folder as Hydra reads them. None when options may come from where only Hydra
    looks: another primary config (``--config-path``, ``--config-name``), or a ``pkg://`` entry.
    """
    folders = [Path(config_dir)]
    for index, argument in enumerate(arguments):
        flag, _, value = argument.partition("=")
        if flag in ("-cp", "--config-path", "-cn", "--config-name"):
            return None
        if flag in ("-cd", "--config-dir"):
            value = value or (arguments[index + 1] if index + 1 < len(arguments) else "")
            folders.append(Path(value))
    for override in _overrides(arguments):
        if override.key_or_group != "hydra.searchpath" or override.is_delete():
            continue
        entries = override.value()
        if not isinstance(entries, list) or not all(
            isinstance(entry, str) and entry.startswith("file://") for entry in entries
        ):
            return None
        folders += [Path(entry.removeprefix("file://")) for entry in entries]
    return folders


def unknown_option(config_dir: str | Path, arguments: Sequence[str]) -> str | None:
    """The message for the first ``group=option`` whose option has no file, else None."""
    folders = option_folders(config_dir, arguments)
    if folders is None:
        return None  # options may come from elsewhere: Hydra knows
    for group, values in _group_choices(arguments):
        group_folders = [folder / group for folder in folders if (folder / group).is_dir()]
        if not group_folders:
            continue  # a key (trainer.max_epochs=3), not a group
        available = sorted(
            {path.stem for folder in group_folders for path in folder.glob("*.yaml")}
        )
        for value in values:
            if value not in available:
                return (
                    f"{group}={value} is not an option of {group}; the available options are "
                    f"{', '.join(available)} (the files in "
                    f"{' and '.join(map(str, group_folders))})."
                )
    return None


def refuse_unknown_options(config_dir: str | Path, arguments: Sequence[str] | None = None) -> None:
    """Exit with one line (status 1) when the command line names an unknown group option or a
    renamed key."""
    arguments = sys.argv[1:] if arguments is None else arguments
    message = unknown_option(config_dir, arguments) or renamed_key(arguments)
    if message is not None:
        sys.exit(f"ConfigError: {message}")


def command(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[..., Any]]:
    """``@hydra.main`` on ``conf/<config_name>.yaml`` of the installed package, after the checks
    above.

    Both ways to run a command call the ``main`` this makes: ``python -m gan_lightning.train``
    (the module's ``__main__`` block) and the ``gan-train`` console script (pyproject.toml), so
    both refuse a bad command line in one line before Hydra composes anything. A config passed
    in directly (``main(cfg)``, as with ``hydra.main``) has no command line to check.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[..., Any]:
        hydra_main = hydra.main(
            version_base="1.3", config_path=CONFIG_PATH, config_name=config_name
        )(task)

        @functools.wraps(hydra_main)
        def main(cfg_passthrough: DictConfig | None = None) -> Any:
            if cfg_passthrough is None:
                check_plugins(sys.argv[1:])
                refuse_unknown_options(CONFIG_DIR)
            return hydra_main(cfg_passthrough)

        return main

    return decorate
