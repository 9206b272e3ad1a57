"""Metrics during real (tiny) training runs, and ``python -m gan_lightning.evaluate`` on them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_lightning.classifier import launch_training, read_classifier_file
from gan_lightning.data.datamodule import MNISTDataModule
from gan_lightning.errors import MissingClassifierError
from gan_lightning.evaluate import _Judges, evaluate, find_checkpoints
from gan_lightning.metrics.suite import LOGGED_METRICS, add_real_as_fake, build_suite
from tests.metrics_helpers import compose_config, make_classifier_file, run_cli, tiny_gan_sweep

UNCONDITIONAL = [name for name in LOGGED_METRICS if name != "cond_acc"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """A sweep folder with two finished tiny runs, ``model=cgan`` and ``model=dcgan``."""
    root = tmp_path_factory.mktemp("metrics_sweep")
    classifier = make_classifier_file(root / "classifier" / "MNIST_classifier.pt")
    result = tiny_gan_sweep(root / "sweep", tiny_mnist_root, classifier, "dcgan,cgan")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def compose_evaluate(overrides: list[str]) -> DictConfig:
    return compose_config("evaluate", overrides)


def scalars(run: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_training_logs_every_metric_each_epoch_and_writes_metrics_json(sweep: Path) -> None:
    dcgan, cgan = sweep / "sweep" / "dcgan", sweep / "sweep" / "cgan"
    curves = scalars(dcgan)
    for name in UNCONDITIONAL:
        assert len(curves[f"metrics/{name}"]) == 2, name  # trainer=debug: two epochs
    assert "metrics/cond_acc" not in curves
    assert len(scalars(cgan)["metrics/cond_acc"]) == 2

    final = json.loads((dcgan / "metrics.json").read_text())
    assert final["epoch"] == 1 and final["num_fake"] == 100 and final["num_real"] == 128
    assert final["fid"] == pytest.approx(curves["metrics/fid"][-1], rel=1e-5)
    assert len(final["class_fractions"]) == 10
    conditional = json.loads((cgan / "metrics.json").read_text())
    assert len(conditional["cond_acc_per_class"]) == 10
    # Real features are cached next to the classifier, once per test-image tensor: the 32 px
    # (dcgan) and the 28 px (cgan) test sets are two entries.
    assert len(list((sweep / "classifier" / "cache").glob("MNIST_test_*.pt"))) == 2


def test_evaluate_reproduces_the_final_metrics_of_a_run(sweep: Path, tmp_path: Path) -> None:
    run = sweep / "sweep" / "dcgan"
    out = tmp_path / "eval.json"
    cfg = compose_evaluate(
        [
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            "num_samples=100",
            # The run's metrics.batch_size: convolutions round differently per batch size, and
            # 100 samples in 128 feature dimensions leave FID's covariance ill-conditioned.
            "batch_size=50",
            f"out={out}",
        ]
    )
    report = evaluate(cfg)
    assert json.loads(out.read_text()) == report
    (row,) = report["runs"]
    trained = json.loads((run / "metrics.json").read_text())
    assert row["run"] == "dcgan" and row["num_fake"] == trained["num_fake"]
    for name in UNCONDITIONAL:
        assert row[name] == pytest.approx(trained[name], rel=1e-4, abs=1e-6), name
    floor = report["real_floor"]
    assert floor["num_fake"] == 256 and floor["fid"] < row["fid"]  # real digits beat noise


def test_evaluate_at_another_temperature_says_so_in_every_row(sweep: Path, tmp_path: Path) -> None:
    run = sweep / "sweep" / "dcgan"
    common = [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "num_samples=100"]
    common += ["batch_size=50", "real_floor=false"]
    own = evaluate(compose_evaluate([*common, f"out={tmp_path / 'own.json'}"]))
    hotter = evaluate(
        compose_evaluate([*common, "temperature=1.5", f"out={tmp_path / 'hot.json'}"])
    )
    assert own["settings"]["temperature"] is None and own["runs"][0]["temperature"] == 1.0
    assert hotter["settings"]["temperature"] == 1.5 and hotter["runs"][0]["temperature"] == 1.5
    assert hotter["runs"][0]["fid"] != own["runs"][0]["fid"]


def test_evaluate_command_on_a_sweep_prints_one_row_per_run_best_first(sweep: Path) -> None:
    result = run_cli(
        "gan_lightning.evaluate", [f"run_dir={sweep / 'sweep'}", "num_samples=100"], cwd=sweep
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((sweep / "sweep" / "evaluation.json").read_text())
    runs = report["runs"]
    assert sorted(row["run"] for row in runs) == ["cgan", "dcgan"]
    assert runs[0]["fid"] <= runs[1]["fid"]
    assert "cond_acc" in next(row for row in runs if row["run"] == "cgan")
    assert "real_floor" in report
    # The table's first column, top to bottom: best run, other run, then the floor row.
    first_cells = [line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line]
    rows = [cell for cell in first_cells if cell in ("cgan", "dcgan") or cell.startswith("real")]
    assert rows[:2] == [runs[0]["run"], runs[1]["run"]] and rows[2].startswith("real data floor")
    assert sorted(p.name for p in sweep.iterdir()) == ["classifier", "sweep"]  # no Hydra folder


@pytest.mark.parametrize(
    ("ckpt_path", "run_dir", "message"),
    [
        (None, None, "give exactly one of ckpt_path"),
        ("a.ckpt", ".", "give exactly one of ckpt_path"),
        (None, ".", "no <run>/checkpoints/last.ckpt below"),
        ("missing.ckpt", None, "no checkpoint at"),
    ],
)
def test_evaluate_explains_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ckpt_path: str, run_dir: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        find_checkpoints(ckpt_path, run_dir)


@pytest.mark.slow
def test_real_data_floor_with_a_two_epoch_classifier(
    shared_data_root: Path, tmp_path: Path
) -> None:
    """The floor on real MNIST: the 6,309 training digits judged against the 10,000 test ones."""
    weights = tmp_path / "MNIST_classifier.pt"
    launch_training(weights, shared_data_root, "MNIST", overrides=["trainer.max_epochs=2"])
    accuracy = read_classifier_file(weights)["test_accuracy"]
    assert accuracy > 0.9, f"2 epochs on 5,678 digits should pass 90% test accuracy: {accuracy}"
    datamodule = MNISTDataModule(str(shared_data_root), val_fraction=0.0, download=False)
    datamodule.setup()
    suite = build_suite(weights, datamodule)
    add_real_as_fake(suite, datamodule, "train", batch_size=500)
    floor = suite.compute()
    assert (floor["num_fake"], floor["num_real"]) == (6309, 10000)
    assert floor["precision"] > 0.6 and floor["recall"] > 0.6 and floor["is"] > 7
    assert floor["coverage_kl"] < 0.05 and floor["min_class_fraction"] > 0.07
    assert floor["cond_acc"] > 0.9

    # A poor "generator": the same digits under heavy noise scores far worse on every axis.
    suite.reset_fake()
    noise = torch.Generator().manual_seed(0)
    for images in datamodule.real_images("train").split(500):
        suite.update_fake((images + torch.randn(images.shape, generator=noise)).clamp(-1, 1))
    noisy = suite.compute()
    assert noisy["fid"] > 3 * floor["fid"] and noisy["kid"] > 3 * floor["kid"]
    assert noisy["precision"] < floor["precision"]


def test_evaluate_names_its_own_classifier_key(tmp_path: Path, tiny_mnist_root: Path) -> None:
    """evaluate's key is classifier_ckpt; metrics.classifier_ckpt belongs to train."""
    missing = tmp_path / "missing.pt"
    cfg = compose_config("evaluate", [f"classifier_ckpt={missing}"])
    run_config = {
        "data": {
            "_target_": "gan_lightning.data.datamodule.MNISTDataModule",
            "root": str(tiny_mnist_root),
        },
        "metrics": {"classifier_ckpt": "elsewhere.pt"},
    }
    with pytest.raises(MissingClassifierError) as caught:
        _Judges(cfg, torch.device("cpu"))(run_config)
    message = str(caught.value)
    assert f"no classifier weights at {missing} (classifier_ckpt)" in message
    assert "point classifier_ckpt=<file>" in message and "metrics." not in message
