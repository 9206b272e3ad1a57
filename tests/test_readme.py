"""Every command README.md shows a user is real: its module, config and overrides compose.

The commands themselves are exercised end to end elsewhere (test_train_cli, test_sample, ...);
this test keeps README from drifting away from the code as options are renamed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()

#: Each Hydra entry point and the config it composes.
ENTRY_CONFIGS = {
    "gan_lightning.train": "train",
    "gan_lightning.train_classifier": "classifier",
    "gan_lightning.sample": "sample",
    "gan_lightning.evaluate": "evaluate",
}


def readme_commands() -> list[str]:
    """Shell lines of README's fenced bash blocks, with continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def hydra_commands() -> list[tuple[str, list[str]]]:
    found = []
    for command in readme_commands():
        words = shlex.split(command)
        if words[:2] == ["python", "-m"] and words[2] in ENTRY_CONFIGS:
            found.append((words[2], words[3:]))
    return found


def first_choice(override: str) -> str:
    """``key=a,b`` -> ``key=a``; lists (``[0.7,1.0]``) are one value, not a sweep."""
    return override.split(",")[0] if "=" in override and "[" not in override else override


def test_readme_shows_the_setup_and_test_commands() -> None:
    commands = readme_commands()
    for expected in ("make train", "make test", "tensorboard --logdir outputs"):
        assert expected in commands
    assert any(
        c.startswith("python -m venv .venv") and 'pip install -e ".[dev]"' in c for c in commands
    )


def test_readme_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    for command in readme_commands():
        if command.startswith("make "):
            target = command.split()[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), target


def test_readme_scripts_exist() -> None:
    for command in readme_commands():
        words = shlex.split(command)
        if words[0] == "python" and words[1].endswith(".py"):
            assert (REPO / words[1]).is_file(), words[1]


@pytest.mark.parametrize(
    ("module", "overrides"),
    hydra_commands(),
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_readme_hydra_command_composes(module: str, overrides: list[str]) -> None:
    if "-m" in overrides:  # a sweep: each job composes like its first combination
        overrides = [
            o.split(",")[0] if "=" in o and "[" not in o else o for o in overrides if o != "-m"
        ]
    overrides = [o.replace("<", "_").replace(">", "_") for o in overrides]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        compose(ENTRY_CONFIGS[module], overrides=overrides)


def test_readme_shows_every_entry_point() -> None:
    shown = {module for module, _ in hydra_commands()}
    assert shown == set(ENTRY_CONFIGS)


def test_the_code_map_names_only_modules_that_exist() -> None:
    """README's "How the code is laid out" lists every layer's modules: none may be stale."""
    section = README.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+(?:\.py|/))`", section))
    package = REPO / "gan_lightning"
    missing = [
        name for name in sorted(named) if not ((package / name).exists() or (REPO / name).exists())
    ]
    assert len(named) > 20 and missing == []
