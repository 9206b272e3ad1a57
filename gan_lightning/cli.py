"""Command-line checks that run before Hydra composes anything.

An unknown option of a config group (``model=nosuchmodel``) makes Hydra end its message with its
whole config search path, which helps nobody who mistyped a model name; it is refused here
first, in one line naming the option and the available ones. A key that was renamed is refused
the same way, naming its new name.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

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


def unknown_option(config_dir: str | Path, arguments: Sequence[str]) -> str | None:
    """The message for the first ``group=option`` whose option has no file, else None."""
    if any(
        arg in ("-cd", "--config-dir") or arg.startswith(("--config-dir=", "hydra.searchpath"))
        for arg in arguments
    ):
        return None  # options may come from elsewhere: Hydra knows
    for group, values in _group_choices(arguments):
        folder = Path(config_dir) / group
        if not folder.is_dir():
            continue  # a key (trainer.max_epochs=3), not a group
        available = sorted(path.stem for path in folder.glob("*.yaml"))
        for value in values:
            if value not in available:
                return (
                    f"{group}={value} is not an option of {group}; the available options are "
                    f"{', '.join(available)} (the files in {folder})."
                )
    return None


def refuse_unknown_options(config_dir: str | Path, arguments: Sequence[str] | None = None) -> None:
    """Exit with one line (status 1) when the command line names an unknown group option or a
    renamed key."""
    arguments = sys.argv[1:] if arguments is None else arguments
    message = unknown_option(config_dir, arguments) or renamed_key(arguments)
    if message is not None:
        sys.exit(f"ConfigError: {message}")
