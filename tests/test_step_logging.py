"""Per-step scalars: written every ``log_every_n_steps`` batches; epoch means exact, on device."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.build import build_gan_module, build_trainer
from gan_lightning.gan.running_means import RunningMeans
from gan_lightning.pictures import read_scalars


def test_means_are_weighted_by_batch_size_over_the_steps_that_reported_them() -> None:
    means = RunningMeans()
    means.update({"loss/d": torch.tensor(1.0), "loss/g": torch.tensor(4.0)}, weight=64)
    means.update({"loss/g": torch.tensor(2.0)}, weight=64)  # D skipped this batch
    means.update({"loss/d": torch.tensor(3.0), "loss/g": torch.tensor(1.0)}, weight=32)
    result = means.compute()
    torch.testing.assert_close(result["loss/d"], torch.tensor((64 * 1.0 + 32 * 3.0) / 96))
    torch.testing.assert_close(result["loss/g"], torch.tensor((64 * 4 + 64 * 2 + 32 * 1) / 160.0))
    means.reset()
    assert means.compute() == {}


def test_partial_sums_survive_a_weights_only_checkpoint_round_trip() -> None:
    means = RunningMeans()
    means.update({"a": torch.tensor(1.0), "b": torch.tensor(2.0, dtype=torch.bfloat16)}, 10)
    means.update({"a": torch.tensor(3.0)}, 30)
    buffer = io.BytesIO()
    torch.save({"epoch_means": means.state_dict()}, buffer)
    buffer.seek(0)
    restored = RunningMeans()
    restored.load_state_dict(torch.load(buffer, weights_only=True)["epoch_means"])
    restored.update({"a": torch.tensor(5.0)}, 60)
    result = restored.compute()
    torch.testing.assert_close(result["a"], torch.tensor((10 + 90 + 300) / 100.0))
    torch.testing.assert_close(result["b"], torch.tensor(2.0))


def fit_and_read_scalars(compose_train, tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_train(
        [
            "model=mlp",
            "data.batch_size=16",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=12",
            "callbacks.generative_metrics=null",
            "callbacks.training_pictures=null",
            *overrides,
        ]
    )
    build_trainer(cfg).fit(build_gan_module(cfg), datamodule=instantiate(cfg.data))
    return read_scalars(tmp_path / "run" / "tensorboard")


def test_step_scalars_are_written_only_on_lightnings_logging_steps(
    compose_train, tmp_path: Path
) -> None:
    scalars = fit_and_read_scalars(compose_train, tmp_path, "trainer.log_every_n_steps=5")
    # Lightning writes a batch's step metrics when (batches so far + 1) % n == 0.
    assert scalars["loss/d_step"][0] == [4, 9]
    assert scalars["loss/g_step"][0] == [4, 9]
    assert scalars["loss/d_epoch"][0] == [11]  # one value, at the epoch's last batch


@pytest.mark.parametrize("d_every_n_batches", [1, 3])
def test_epoch_means_equal_the_mean_of_every_step_value(
    compose_train, tmp_path: Path, d_every_n_batches: int
) -> None:
    scalars = fit_and_read_scalars(
        compose_train,
        tmp_path,
        "trainer.log_every_n_steps=1",
        f"tricks.d_every_n_batches={d_every_n_batches}",
    )
    for name in ("loss/d", "loss/g", "D(x)", "D(G(z))"):
        steps, values = scalars[f"{name}_step"]
        assert steps == list(range(12))
        if name != "loss/g":
            # D stepped on every n-th batch; between them Lightning repeats its last value.
            stepped = [step % d_every_n_batches == 0 for step in steps]
            values = [value for value, d_stepped in zip(values, stepped, strict=True) if d_stepped]
        (epoch_mean,) = scalars[f"{name}_epoch"][1]
        assert epoch_mean == pytest.approx(sum(values) / len(values), rel=1e-5), name


def test_a_critics_outputs_are_logged_as_raw_scores_not_probabilities(
    compose_train, tmp_path: Path
) -> None:
    scalars = fit_and_read_scalars(compose_train, tmp_path, "loss=hinge")
    assert {"D_score(x)_step", "D_score(G(z))_epoch"} <= set(scalars)
    assert not {name for name in scalars if name.startswith(("D(x)", "D(G(z))"))}
