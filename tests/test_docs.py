"""Every command README.md and the docs pages show a user is real, and the site builds strictly.

The commands themselves are exercised end to end elsewhere (test_train_cli, test_sample, ...);
these tests keep the documentation from drifting away from the code as options are renamed or
modules move: each ``python -m gan_lightning.*`` line of a ```bash block must compose, each
``make`` target and script it names must exist, and a page or link that goes missing fails here
before a reader finds it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
#: README is the front door; the pages under docs/ are the manual (mkdocs.yml builds them).
DOC_FILES = [README, *sorted(DOCS.glob("*.md"))]

#: Each Hydra entry point and the config it composes.
ENTRY_CONFIGS = {
    "gan_lightning.train": "train",
    "gan_lightning.train_classifier": "classifier",
    "gan_lightning.sample": "sample",
    "gan_lightning.evaluate": "evaluate",
}


def bash_commands(path: Path) -> list[str]:
    """Shell lines of a page's fenced bash blocks, with continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def all_commands() -> list[tuple[str, str]]:
    """(page, command) for every bash line of README and every docs page."""
    return [
        (str(path.relative_to(REPO)), command)
        for path in DOC_FILES
        for command in bash_commands(path)
    ]


#: The console commands of pyproject.toml's [project.scripts] and the module each one runs.
CONSOLE_COMMANDS = {
    "gan-train": "gan_lightning.train",
    "gan-train-classifier": "gan_lightning.train_classifier",
    "gan-sample": "gan_lightning.sample",
    "gan-evaluate": "gan_lightning.evaluate",
}
#: Options whose command reads a user's own config folder, which tests/test_packaging.py
#: builds and runs end to end; here they cannot compose against conf/ alone.
_USER_FOLDER = ("--config-dir", "hydra.searchpath")


def hydra_commands() -> list[tuple[str, str, list[str]]]:
    """(first page showing it, module, overrides) for each distinct entry-point command,
    whether shown as ``python -m gan_lightning.<command>`` or as its console command."""
    found: dict[tuple[str, ...], tuple[str, str, list[str]]] = {}
    for page, command in all_commands():
        words = shlex.split(command)
        if words[:2] == ["python", "-m"] and words[2] in ENTRY_CONFIGS:
            module, overrides = words[2], words[3:]
        elif words[0] in CONSOLE_COMMANDS:
            module, overrides = CONSOLE_COMMANDS[words[0]], words[1:]
        else:
            continue
        if "--help" in overrides or any(o.startswith(_USER_FOLDER) for o in overrides):
            continue
        found.setdefault((module, *overrides), (page, module, overrides))
    return list(found.values())


def test_console_commands_are_the_ones_pyproject_installs() -> None:
    # A regex, not tomllib: the project supports Python 3.10, which has none.
    section = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([\w.]+):main"', section, flags=re.M))
    assert scripts == CONSOLE_COMMANDS


def first_choice(override: str) -> str:
    """``key=a,b`` -> ``key=a``; lists (``[0.7,1.0]``) are one value, not a sweep."""
    return override.split(",")[0] if "=" in override and "[" not in override else override


def nav_pages(nav: list) -> list[str]:
    """The page files of mkdocs.yml's nav, sections flattened."""
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_readme_shows_the_setup_and_test_commands() -> None:
    """CI and a newcomer start from README: the set-up, test and TensorBoard lines stay there."""
    commands = bash_commands(README)
    for expected in ("make train", "make test", "tensorboard --logdir outputs"):
        assert expected in commands
    assert any(
        c.startswith("python -m venv .venv") and 'pip install -e ".[dev]"' in c for c in commands
    )


def test_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    for page, command in all_commands():
        if command.startswith("make "):
            target = command.split()[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), (page, target)


def test_scripts_exist() -> None:
    for page, command in all_commands():
        words = shlex.split(command)
        if words[0] == "python" and words[1].endswith(".py"):
            assert (REPO / words[1]).is_file(), (page, words[1])


@pytest.mark.parametrize(
    ("page", "module", "overrides"),
    hydra_commands(),
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_hydra_command_composes(page: str, module: str, overrides: list[str]) -> None:
    if "-m" in overrides:  # a sweep: each job composes like its first combination
        overrides = [first_choice(o) for o in overrides if o != "-m"]
    overrides = [o.replace("<", "_").replace(">", "_") for o in overrides]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        compose(ENTRY_CONFIGS[module], overrides=overrides)


def test_docs_show_every_entry_point() -> None:
    shown = {module for _, module, _ in hydra_commands()}
    assert shown == set(ENTRY_CONFIGS)


def test_the_code_map_names_only_modules_that_exist() -> None:
    """docs/code-layout.md lists every layer's modules: none may be stale."""
    page = (DOCS / "code-layout.md").read_text()
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+(?:\.py|/))`", page))
    package = REPO / "gan_lightning"
    missing = [
        name for name in sorted(named) if not ((package / name).exists() or (REPO / name).exists())
    ]
    assert len(named) > 20 and missing == []


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    """What strict mode checks, here too where mkdocs is not installed."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = nav_pages(config["nav"])
    pages = sorted(path.name for path in DOCS.glob("*.md"))
    assert sorted(nav) == pages and len(set(nav)) == len(nav)


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_at_files(path: Path) -> None:
    """README is not part of the site, so only this test sees its links (docs/... on GitHub)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text())
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and t[0] != "#"]
    missing = [t for t in local if not (path.parent / t).exists()]
    assert missing == []


@pytest.mark.skipif(
    not (importlib.util.find_spec("mkdocs") and importlib.util.find_spec("material")),
    reason='mkdocs and mkdocs-material are not installed: pip install -e ".[docs]"',
)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # docs/images/ links to the committed figures instead of copying them: the site must hold them.
    for image in (DOCS / "images").iterdir():
        assert (site / "images" / image.name).read_bytes() == image.read_bytes(), image.name
    assert (site / "recipes" / "index.html").is_file()
