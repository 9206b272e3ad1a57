"""Where the Hydra configs are installed, found through the import system.

``conf/`` at the top of the repository is mapped to the package ``gan_lightning.conf`` in
pyproject.toml, so a wheel carries it and every command finds it from any folder. This lives at
the bottom of the package because both the commands (``config_path``) and the sweep pre-flight
checks (which read the group folders) need it, and neither should import the other.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from gan_lightning.errors import ConfigError

#: The package the Hydra configs are installed as.
CONFIG_PACKAGE = "gan_lightning.conf"
#: ``@hydra.main``'s ``config_path``: found wherever the package is installed (a wheel, an
#: editable checkout), whatever folder a command runs from.
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"


def _config_dir() -> Path:
    try:
        return Path(str(importlib.resources.files(CONFIG_PACKAGE)))
    except ModuleNotFoundError as missing:
        # An editable install made before conf/ became a package maps no gan_lightning.conf.
        raise ConfigError(
            f"the configs ({CONFIG_PACKAGE}) are not installed with {Path(__file__).parent}: "
            'reinstall the package (in a checkout: pip install -e ".[dev]")'
        ) from missing


#: The same tree as a folder, for code that reads the files (the command-line checks, tests).
CONFIG_DIR = _config_dir()
