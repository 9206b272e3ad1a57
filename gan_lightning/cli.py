"""Command-line checks that run before Hydra composes anything.

An unknown option of a config group (``model=nosuchmodel``) makes Hydra end its message with its
whole config search path, which helps nobody who mistyped a model name; it is refused here
first, in one line naming the option and the available ones.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException


def _group_choices(arguments: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """(group, options asked for) of every ``group=option`` override on the command line."""
    overrides = [arg for arg in arguments if not arg.startswith("-") and "=" in arg]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return  # malformed: Hydra's own parser error says what is wrong with it
    for override in parsed:
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
    """Exit with one line (status 1) when the command line names an unknown group option."""
    message = unknown_option(config_dir, sys.argv[1:] if arguments is None else arguments)
    if message is not None:
        sys.exit(f"ConfigError: {message}")
