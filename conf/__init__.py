"""The Hydra configs, installed as the package ``gan_lightning.conf`` (see pyproject.toml).

This file makes ``conf/`` a regular package, so a wheel carries the YAML files as its package
data and the commands find them with ``config_path="pkg://gan_lightning.conf"`` wherever the
package is installed.
"""
