"""notebooks/compare_runs.ipynb runs top to bottom on a folder of finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

REPO = Path(__file__).resolve().parents[1]


def test_compare_runs_notebook_ranks_runs_by_fid(tmp_path: Path, monkeypatch, capsys) -> None:
    for name, fid in (("runs/b", 40.0), ("multirun/x/optim.d.lr=0.001", 12.5)):
        run = tmp_path / name
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"epoch": 4, "fid": fid, "is": 8.1}))
    monkeypatch.setenv("GAN_RUNS_ROOT", str(tmp_path))
    matplotlib.use("Agg")
    notebook = json.loads((REPO / "notebooks" / "compare_runs.ipynb").read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)  # noqa: S102 - our own notebook
    out = capsys.readouterr().out
    assert "2 runs under" in out
    assert out.index("optim.d.lr=0.001") < out.index("runs/b")  # best FID first
