"""``benchmarks/gpu_check.py``: it refuses in one line without CUDA, and ``--device cpu --quick``
runs every section end to end. Figures are never asserted: they come from a GPU, not from here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_refuses_in_one_line_without_a_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2
    assert run.stdout == "" and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "sees no CUDA device" in run.stderr and "--device cpu" in run.stderr
    assert not out.exists()


def test_a_section_that_would_not_fit_the_budget_is_skipped_and_reported(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [
        sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out),
        "--sections", "profile", "--budget-seconds", "1",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "- profile: SKIPPED" in run.stdout and "rerun with --sections profile" in run.stdout
    report = json.loads((out / "gpu_check.json").read_text())
    assert set(report["sections"]) == {"profile"} and "skipped" in report["sections"]["profile"]


@pytest.mark.slow  # several processes: the check's own pytest and a training run
def test_cpu_smoke_run_reports_every_section(tiny_mnist_root: Path, tmp_path: Path) -> None:
    from metrics_helpers import make_classifier_file

    classifier = make_classifier_file(tmp_path / "classifier.pt")
    out = tmp_path / "out"
    command = [
        sys.executable, str(SCRIPT), "--device", "cpu", "--quick",
        "--out", str(out), "--work", str(tmp_path / "work"),
        "--workloads", "mlp:16", "--precisions", "32-true",
        "--compile-workloads", "--fused-workloads",
        "--profile-workload", "mlp:16", "--profile-precision", "32-true",
        "--data-root", str(tiny_mnist_root), "--classifier", str(classifier),
        "--best-seconds", "2",
        "--best-overrides", "data.batch_size=16", "metrics.num_samples=60",
        "metrics.final_num_samples=80", "metrics.batch_size=40",
        "callbacks.training_pictures=null",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for section in ("## tests", "## speed", "## quality", "## profile"):
        assert section in run.stdout

    report = json.loads((out / "gpu_check.json").read_text())
    sections = report["sections"]
    assert not [name for name, section in sections.items() if "error" in section]
    tests = sections["tests"]["result"]
    # Without CUDA every gpu-marked test is collected and skipped, none fails.
    assert set(tests["counts"]) == {"skipped"} and tests["counts"]["skipped"] >= 20
    assert tests["sync_counts"]["skipped"] >= 3

    (workload,) = sections["speed"]["result"]["workloads"]
    assert (workload["model"], workload["batch_size"], workload["group"]) == ("mlp", 16, "eager")
    assert set(workload["contestants"]) == {"framework", "plain"}
    assert workload["ratios"]["framework/plain"]["median"] > 0

    quality = sections["quality"]["result"]
    assert quality["returncode"] == 0 and quality["final_metrics"]["fid"] > 0
    assert (out / "best_samples.png").stat().st_size > 0

    profile = sections["profile"]["result"]
    assert profile["framework"]["host_ms_in_hooks_and_step"] > 0
    assert profile["plain"]["gpu_busy_share"] is None  # no kernels on a CPU
    assert "aten::" in profile["framework"]["top_ops"]
    # The device tool brings back at most 8 files from its output folder.
    assert len(list(out.iterdir())) <= 8
