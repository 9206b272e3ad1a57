"""Imports inside the package point down the layers only, and nothing imports a command.

Read from the source with ``ast`` (nothing is imported), so the test also sees imports inside
functions. A module may import its own layer or any layer below; a new module must be given a
layer here, which is the moment to decide where it belongs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gan_lightning"

#: Bottom to top. Each entry names modules or packages by their path under gan_lightning.
LAYERS: list[tuple[str, set[str]]] = [
    ("errors, value checks and version shims", {"errors", "checks", "compat"}),
    (
        "parts: networks, data, the GAN's pure parts, run files",
        {
            "networks",
            "data",
            "gan.losses",
            "gan.regularizers",
            "gan.tricks",
            "gan.augment",
            "gan.ema",
            "gan.running_means",
            "gan.divergence",
            "gan.health",
            "gan.schedules",
            "runs.checkpoint_io",
            "runs.disk_space",
            "pictures",
        },
    ),
    (
        "library: the GAN module, metrics, checkpoints, sampling",
        {
            "gan.module",
            "runs.checkpoints",
            "runs.faults",
            "runs.folder",
            "classifier",
            "metrics",
            "sampling",
            "rejection",
        },
    ),
    ("Lightning callbacks", {"callbacks"}),
    (
        "assembly: config checks, building, sweeps",
        {"config", "build", "cli", "sweeps", "hydra_callbacks"},
    ),
    ("commands", {"train", "sample", "evaluate", "train_classifier"}),
]
COMMANDS = LAYERS[-1][1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(source) for source in PACKAGE.rglob("*.py")}
PACKAGES = {module_name(init) for init in PACKAGE.rglob("__init__.py")}


def layer_of(module: str) -> int:
    """The layer of ``gan_lightning.<name>``: the entry naming its longest dotted prefix.

    A package (``networks``) places all its modules; a module of a package (``gan.module``)
    places itself, so a package may span layers. A package's ``__init__`` counts as bottom.
    """
    parts = module.split(".")[1:]
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        for index, (_, names) in enumerate(LAYERS):
            if prefix in names:
                return index
    if module in PACKAGES:
        return 0
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py: give it one")


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


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_no_module_imports_a_command() -> None:
    offenders = [
        f"{module_name(path)} imports {name}"
        for path in PACKAGE.rglob("*.py")
        for name in package_imports(path)
        if name.split(".")[1] in COMMANDS
    ]
    assert offenders == []


def test_imports_point_down_the_layers_only() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        importer = module_name(path)
        for name in package_imports(path):
            if layer_of(name) > layer_of(importer):
                offenders.append(
                    f"{importer} ({LAYERS[layer_of(importer)][0]}) imports {name} "
                    f"({LAYERS[layer_of(name)][0]})"
                )
    assert offenders == []


def test_the_walk_sees_an_upward_import(tmp_path: Path) -> None:
    """The checks above would pass on a walk that finds nothing."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from gan_lightning.train import main\n")
    assert "gan_lightning.train" in package_imports(source)
