"""Every command's entry point: ``@hydra.main`` on the packaged configs, with the one check of
the command line that Hydra cannot make and Lightning's promotional tips left out.

Hydra refuses an unknown option itself, naming it and listing the available ones (for a sweep,
every job's options before the first job runs). What it cannot say is why a sweep plugin's
option is missing: that the plugin is not installed and which package to install
(:func:`~gan_lightning.sweeps.preflight.check_plugins`).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from gan_lightning.config_source import CONFIG_PATH
from gan_lightning.sweeps.preflight import check_plugins

#: The logger Lightning's ``rank_zero_info`` writes through, tips included.
LIGHTNING_INFO_LOGGER = "pytorch_lightning.utilities.rank_zero"
#: How Lightning's advertisements for its cloud services start ("💡 Tip: For seamless cloud
#: logging ... try installing litlogger"): one per run, not about the run.
TIP_PREFIX = "💡 Tip:"


def without_tips(record: logging.LogRecord) -> bool:
    """A ``logging`` filter: False for Lightning's tips, True for every other record."""
    return not str(record.msg).startswith(TIP_PREFIX)


def hide_lightning_tips() -> None:
    """Filter the tips out where Lightning logs them; its other messages (devices, warnings)
    stay. Idempotent, so every command may call it."""
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if without_tips not in logger.filters:
        logger.addFilter(without_tips)


def command(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[..., Any]]:
    """``@hydra.main`` on ``conf/<config_name>.yaml`` of the installed package.

    Both ways to run a command call the ``main`` this makes: ``python -m gan_lightning.train``
    (the module's ``__main__`` block) and the ``gan-train`` console script (pyproject.toml), so
    both refuse a missing sweep plugin before Hydra composes anything. A config passed in
    directly (``main(cfg)``, as with ``hydra.main``) has no command line to check.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[..., Any]:
        hydra_main = hydra.main(
            version_base="1.3", config_path=CONFIG_PATH, config_name=config_name
        )(task)

        @functools.wraps(hydra_main)
        def main(cfg_passthrough: DictConfig | None = None) -> Any:
            hide_lightning_tips()
            if cfg_passthrough is None:
                check_plugins(sys.argv[1:])
            return hydra_main(cfg_passthrough)

        return main

    return decorate
