"""The package's folders are its layers: imports point down only; nothing imports a command.

Read from the source with ``ast`` (nothing is imported), so the test also sees imports inside
functions. Each top-level module or folder of ``gan_lightning`` sits in one layer; a module may
import its own folder, its layer or any layer below. A new module or folder must be given a
layer here, which is the moment to decide where it belongs.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gan_lightning"

#: Bottom to top: top-level modules and folders (``runs`` is everything in ``runs/``).
LAYERS: list[tuple[str, set[str]]] = [
    (
        "errors, the rule vocabulary, version shims, where configs live",
        {"errors", "rules", "compat", "config_source"},
    ),
    (
        "parts: networks, data, run files, sweep bookkeeping, pictures",
        {"networks", "data", "runs", "sweeps", "pictures"},
    ),
    ("the GAN: losses, penalties, tricks, the averaged G, the training step", {"gan"}),
    (
        "library: the classifier, metrics, drawing from a generator, rejection",
        {"classifier", "metrics", "generation", "rejection"},
    ),
    ("Lightning callbacks", {"callbacks"}),
    (
        "assembly: config checks, building, the command line, Hydra callbacks",
        {"config", "build", "cli", "hydra_callbacks"},
    ),
    ("commands", {"train", "sample", "evaluate", "train_classifier"}),
]
COMMANDS = LAYERS[-1][1]
#: Folder rules a reader can check by eye; implied by the layers, spelled out so a change to
#: ``LAYERS`` that breaks one of them has to be made on purpose.
NEVER_IMPORTS = {
    folder: {"gan", "config", "build", "callbacks", "metrics", "classifier"}
    for folder in ("runs", "sweeps", "data", "networks")
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def home(module: str) -> str:
    """The top-level module or folder of ``gan_lightning.<home>[.<rest>]``."""
    return module.split(".")[1] if module.count(".") else ""


MODULES = {module_name(source) for source in PACKAGE.rglob("*.py")}
HOMES = {home(module) for module in MODULES} - {""}


def layer_of(module: str) -> int:
    for index, (_, names) in enumerate(LAYERS):
        if home(module) in names:
            return index
    raise AssertionError(f"{home(module)} is in no layer of tests/test_layers.py: give it one")


def package_imports(path: Path) -> set[str]:
    """Every ``gan_lightning`` module ``path`` imports, at any depth of its code."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            # `from gan_lightning import sample` imports a module, not a name
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in imported if name in MODULES and name != "gan_lightning"}


IMPORTS = {module_name(path): package_imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_folder_and_module_has_a_layer() -> None:
    named = set().union(*(names for _, names in LAYERS))
    assert HOMES - named == set(), "give these a layer"
    assert named - HOMES == set(), "these layers name nothing that exists"


def test_no_module_imports_a_command() -> None:
    offenders = [
        f"{importer} imports {name}"
        for importer, names in IMPORTS.items()
        for name in names
        if home(name) in COMMANDS
    ]
    assert offenders == []


def test_imports_point_down_the_folders_only() -> None:
    offenders = [
        f"{importer} ({LAYERS[layer_of(importer)][0]}) imports {name} ({LAYERS[layer_of(name)][0]})"
        for importer, names in IMPORTS.items()
        if home(importer)
        for name in names
        if layer_of(name) > layer_of(importer)
    ]
    assert offenders == []


@pytest.mark.parametrize("folder", sorted(NEVER_IMPORTS))
def test_lower_folders_never_import_the_gan_or_assembly(folder: str) -> None:
    offenders = [
        f"{importer} imports {name}"
        for importer, names in IMPORTS.items()
        if home(importer) == folder
        for name in names
        if home(name) in NEVER_IMPORTS[folder]
    ]
    assert offenders == []


def test_no_import_cycles_between_modules() -> None:
    try:
        tuple(TopologicalSorter(IMPORTS).static_order())
    except CycleError as cycle:
        pytest.fail(f"modules import each other in a cycle: {' -> '.join(cycle.args[1])}")


def test_the_walk_sees_an_upward_import(tmp_path: Path) -> None:
    """The checks above would pass on a walk that finds nothing."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from gan_lightning.train import main\n")
    assert "gan_lightning.train" in package_imports(source)
    assert layer_of("gan_lightning.train") > layer_of("gan_lightning.runs.folder")
