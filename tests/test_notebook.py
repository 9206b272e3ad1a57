"""The notebooks in notebooks/ run top to bottom and are committed without outputs.

Each one executes in a fresh Jupyter kernel, as a student's would, with ``GAN_NOTEBOOK_QUICK=1``
(every budget cut to seconds) on the tiny synthetic MNIST. All of them share one project folder:
the first one trains the quick classifier, the others find it, as they would on a laptop.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import nbformat
import pytest
from nbclient import NotebookClient

from gan_lightning.build import build_gan_module
from gan_lightning.config import validate

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPERIMENTS = sorted((NOTEBOOK_DIR / "conf" / "experiment").glob("*.yaml"))
#: What `make strip-notebooks` runs: outputs, execution counts, timings and widget state go;
#: the kernel and language stay (JupyterLab's "Clear Outputs of All Cells" keeps widget state).
STRIP_ARGS = (
    "--clear-output --inplace --ClearMetadataPreprocessor.enabled=True "
    "--ClearMetadataPreprocessor.preserve_nb_metadata_mask=kernelspec "
    "--ClearMetadataPreprocessor.preserve_nb_metadata_mask=language_info"
)


def by_name(path: Path) -> str:
    return path.name


@pytest.fixture(scope="module")
def notebook_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GAN_PROJECT_ROOT of every notebook run: their outputs/ lands here, not in the repo."""
    return tmp_path_factory.mktemp("notebook_project")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=by_name)
def test_notebook_runs_top_to_bottom(
    path: Path, notebook_project: Path, tiny_mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAN_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("GAN_DATA_DIR", str(tiny_mnist_root))
    monkeypatch.setenv("GAN_PROJECT_ROOT", str(notebook_project))
    monkeypatch.delenv("GAN_RUNS_ROOT", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # Agg here would hide every figure
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,  # per cell
        startup_timeout=300,  # a loaded CI machine can take over a minute to start a kernel
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},  # the kernel starts in notebooks/
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            kinds = {kind for output in cell.outputs for kind in output.get("data", {})}
            assert "image/png" in kinds, f"{path.name}, cell {index}: no figure was drawn"


def leftovers(notebook: dict) -> list[str]:
    """What running a notebook leaves in it: none of it belongs in git."""
    found = [
        f"cell {index}: {what}"
        for index, cell in enumerate(notebook["cells"])
        for what, present in (
            ("outputs", cell.get("outputs")),
            ("an execution count", cell.get("execution_count") is not None),
            ("execution timings", "execution" in cell.get("metadata", {})),
        )
        if present
    ]
    if "widgets" in notebook["metadata"]:
        found.append("widget state (the progress bars) in the notebook's metadata")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=by_name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    found = leftovers(json.loads(path.read_text()))
    assert not found, f"{path.name} holds {'; '.join(found)}: run `make strip-notebooks`"


def test_make_strip_notebooks_removes_what_a_run_leaves(tmp_path: Path) -> None:
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    cell.metadata["execution"] = {"iopub.execute_input": "2026-12-03T10:00:00Z"}
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    path = tmp_path / "executed.ipynb"
    nbformat.write(notebook, path)
    assert len(leftovers(json.loads(path.read_text()))) == 4

    subprocess.run([sys.executable, "-m", "nbconvert", *STRIP_ARGS.split(), str(path)], check=True)
    stripped = json.loads(path.read_text())
    assert leftovers(stripped) == []
    assert stripped["metadata"]["kernelspec"]["name"] == "python3"
    assert nbformat.read(path, as_version=4).cells[0].source == "print(1)"
    makefile = " ".join((REPO / "Makefile").read_text().replace("\\\n", " ").split())
    assert f"jupyter nbconvert {STRIP_ARGS} notebooks/*.ipynb" in makefile


@pytest.mark.parametrize("path", EXPERIMENTS, ids=by_name)
def test_notebook_trick_presets_build(path: Path, compose_train) -> None:
    """Notebook 02 runs only three of its seven presets under the quick budget; all must build."""
    cfg = compose_train(
        ["model=mlp", f"hydra.searchpath=[file://{path.parent.parent}]", f"experiment={path.stem}"]
    )
    validate(cfg)
    build_gan_module(cfg)


def test_notebook_two_names_every_preset() -> None:
    notebook = nbformat.read(NOTEBOOK_DIR / "02_stabilization_tricks.ipynb", as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells)
    for path in EXPERIMENTS:
        assert f'"{path.stem}"' in source, f"{path.name} is not in notebook 02's TRICKS"


def test_the_docs_describe_every_notebook() -> None:
    page = (REPO / "docs" / "notebooks.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in page, f"docs/notebooks.md omits {path.name}"
    assert 'pip install -e ".[notebooks]"' in page
    assert "jupyter lab notebooks/" in page


def test_make_test_installs_what_the_notebook_tests_need() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    extra = re.search(r"^notebooks = \[(.*?)^\]", pyproject, flags=re.S | re.M)
    assert extra, "pyproject.toml has no `notebooks` extra"
    for package in ("jupyterlab", "ipykernel", "nbclient", "pandas"):
        assert f'"{package}>=' in extra.group(1), package
    dev = re.search(r"^dev = \[(.*?)^\]", pyproject, flags=re.S | re.M)
    # `make test` installs .[dev], which pulls in this extra
    assert dev and re.search(r'"gan-lightning\[[^]]*\bnotebooks\b[^]]*\]"', dev.group(1))


def test_compare_runs_notebook_ranks_runs_by_fid(tmp_path: Path, monkeypatch) -> None:
    for name, fid in (("runs/b", 40.0), ("multirun/x/optim.d.lr=0.001", 12.5)):
        run = tmp_path / name
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"epoch": 4, "fid": fid, "is": 8.1}))
    monkeypatch.setenv("GAN_RUNS_ROOT", str(tmp_path))
    matplotlib.use("Agg")
    notebook = nbformat.read(NOTEBOOK_DIR / "compare_runs.ipynb", as_version=4)
    namespace: dict = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            exec(cell.source, namespace)  # noqa: S102 - our own notebook
    assert list(namespace["runs"].index) == ["multirun/x/optim.d.lr=0.001", "runs/b"]
