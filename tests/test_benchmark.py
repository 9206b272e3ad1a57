"""Smoke test of the throughput benchmark: its one command runs end to end and writes its figures.

Speed is never asserted (figures come from the benchmark, not from tests); what is checked is that
every contestant trained exactly the batches it was asked to time and that every figure is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = REPO_ROOT / "benchmarks" / "throughput.py"
QUICK_STEPS = 3  # throughput.QUICK["steps"]
BATCH_SIZE = 64


def test_quick_benchmark_reports_every_figure(tiny_mnist_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(BENCHMARK),
        "--quick",
        "--models",
        "mlp",
        "--threads",
        "1",
        "--data-root",
        str(tiny_mnist_root),
        "--json",
        str(output),
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "| model | batch | precision | framework | plain | seed |" in run.stdout

    figures = json.loads(output.read_text())
    assert figures["machine"]["torch_threads"] == 1
    assert figures["peak_gflops"]["fp32"] > 0
    (workload,) = figures["workloads"]
    assert (workload["model"], workload["batch_size"]) == ("mlp", BATCH_SIZE)
    assert workload["flop_per_image"] > 0
    assert set(workload["contestants"]) == {"framework", "plain", "seed"}
    for name, entry in workload["contestants"].items():
        # Exactly the timed batches, although the framework's window spans an epoch end.
        assert entry["timed_images"] == [QUICK_STEPS * BATCH_SIZE], name
        assert entry["images_per_s"]["median"] > 0, name
        assert entry["images_per_cpu_s"]["median"] > 0, name
        assert entry["gflops"] > 0, name
    for ratios in (workload["ratios"], workload["cpu_ratios"]):
        assert set(ratios) == {"framework/plain", "framework/seed"}
        assert all(ratio["median"] > 0 for ratio in ratios.values())
    assert workload["epoch_end_seconds"] > 0
    # The epoch end is time the plain loop does not spend: the whole-epoch ratio is the lower.
    assert 0 < workload["whole_epoch_ratio"] < workload["ratios"]["framework/plain"]["median"]
    assert "whole epoch 1/2" in run.stdout
    assert len(workload["epoch_end_rounds"]) == 1  # one epoch end per run, the last not counted

    (data_path,) = figures["data_path"]
    assert data_path["image_size"] == 28
    assert data_path["ratios"]["datamodule/seed"]["median"] > 0
    (real_run,) = figures["real_runs"]
    assert (real_run["model"], real_run["epochs"]) == ("mlp", 1)
    assert real_run["peak_rss_mib"] > 0
    assert real_run["eval_time_share"] is None  # no classifier here: metrics skipped


def test_quality_curve_trains_scores_and_draws_in_seconds(
    tiny_mnist_root: Path, tmp_path: Path
) -> None:
    from metrics_helpers import make_classifier_file

    classifier = make_classifier_file(tmp_path / "clf.pt")
    out = tmp_path / "curve"
    command = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "quality_curve.py"),
        "--recipes",
        "seed004",
        "best_conditional",
        "--minutes",
        "0.1",
        "--every",
        "0.02",
        "--full-at",
        "0.02",
        "--samples",
        "60",
        "--final-samples",
        "80",
        "--out",
        str(out),
        "--overrides",
        f"data.root={tiny_mnist_root}",
        f"metrics.classifier_ckpt={classifier}",
        "metrics.final_num_samples=80",
        "metrics.num_samples=60",
        "~callbacks.training_pictures",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (out / "quality_curve.png").stat().st_size > 10_000
    table = (out / "quality_curve.md").read_text()
    assert "| seed004 (seed 42) |" in table and "| real-data floor |" in table
    report = json.loads((out / "quality_curve.json").read_text())
    for name in ("seed004 (seed 42)", "best_conditional (seed 42)"):
        rows = report["runs"][name]
        assert len(rows) >= 2, name  # at least one snapshot and the final metrics
        minutes = [row["minute"] for row in rows]
        # The final point sits where training really ended (TimedSnapshots' record).
        assert minutes == sorted(minutes) and minutes[-1] >= 0.1
        assert rows[-1]["final"] and rows[-1]["samples"] == 80
        assert rows[0]["samples"] == 80 if minutes[0] == 0.02 else 60
        assert all("copy_share_feature" in row and row["fid"] > 0 for row in rows)
    assert "cond_acc" in report["runs"]["best_conditional (seed 42)"][-1]
    # Each point at its recipe's own temperature (conf/experiment/*.yaml).
    own = {name: {row["temperature"] for row in rows} for name, rows in report["runs"].items()}
    assert own == {"seed004 (seed 42)": {1.0}, "best_conditional (seed 42)": {1.1}}

    # The same runs at another temperature: every point, the end of training included.
    rescore = [*command[:2], "--skip-training", "--temperature", "1.3", *command[2:]]
    run = subprocess.run(rescore, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    hotter = json.loads((out / "quality_curve.json").read_text())
    for name, rows in hotter["runs"].items():
        assert all(row["temperature"] == 1.3 for row in rows), name
        assert rows[-1]["fid"] != report["runs"][name][-1]["fid"], name
    assert report["real_floor"]["num_fake"] == 256


@pytest.mark.parametrize("model", ["mlp", "dcgan28"])
def test_plain_loop_reusing_fakes_makes_the_update_of_fresh_fakes_from_the_same_latents(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reuse only saves G's second forward pass: with every latent draw the same, both agree."""
    monkeypatch.syspath_prepend(str(BENCHMARK.parent))
    from contestants import PlainGANStep, Workload, compose_config

    real = torch.rand(8, 1, 28, 28) * 2 - 1
    weights = {}
    for reuse in (True, False):
        cfg = compose_config(
            Workload(model, 8, "32-true"), tmp_path, extra=(f"tricks.reuse_fakes={reuse}",)
        )
        step = PlainGANStep(cfg, torch.device("cpu"))
        latents = torch.randn(8, step.latent_dim, generator=torch.Generator().manual_seed(0))
        with monkeypatch.context() as patch:
            patch.setattr(torch, "randn", lambda *_, z=latents, **__: z.clone())
            step(real)
        weights[reuse] = {
            f"{net}.{name}": value.detach().clone()
            for net in ("generator", "discriminator")
            for name, value in getattr(step, net).named_parameters()
        }
    assert weights[True].keys() == weights[False].keys()
    for name, value in weights[True].items():
        torch.testing.assert_close(value, weights[False][name], msg=name)
