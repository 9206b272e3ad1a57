"""The classifier module, its command, its weights file and its augmentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_lightning.classifier import (
    TRAIN_COMMAND,
    AffineAugment,
    ClassifierModule,
    launch_training,
    load_classifier,
    read_classifier_file,
)
from gan_lightning.data.datamodule import MNISTDataModule
from gan_lightning.errors import CheckpointError, MissingClassifierError
from gan_lightning.networks.digit_cnn import MNISTClassifier
from tests.metrics_helpers import compose_config, make_classifier_file


# --------------------------------------------------------------------- augmentation
def test_identity_augment_leaves_images_unchanged() -> None:
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    identity = AffineAugment(rotation=0, translate=0, scale=(1, 1))
    assert torch.allclose(identity(images), images, atol=1e-5)


def test_augment_shifts_fill_with_background_and_keep_shape() -> None:
    images = torch.ones(64, 1, 28, 28)  # all ink: every pixel shifted in from outside shows
    out = AffineAugment(rotation=15, translate=0.1, scale=(0.9, 1.1))(images)
    assert out.shape == images.shape
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    assert (out < 0).any()  # background (-1), never grey 0 padding, came in at the borders
    assert not torch.equal(out[0], out[1])  # a different transform per image


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rotation": -1}, "augment.rotation=-1"),
        ({"translate": 0.5}, "augment.translate=0.5"),
        ({"scale": (1.2, 0.8)}, r"augment.scale=\[1.2, 0.8\]"),
    ],
)
def test_augment_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AffineAugment(**kwargs)


# --------------------------------------------------------------------- the module
def test_classifier_module_trains_a_few_batches(tiny_mnist_root: Path) -> None:
    torch.manual_seed(0)
    datamodule = MNISTDataModule(str(tiny_mnist_root), batch_size=32, download=False)
    module = ClassifierModule(
        MNISTClassifier(),
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3),
        augment=AffineAugment(),
    )
    before = [p.detach().clone() for p in module.parameters()]
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    logged = trainer.callback_metrics
    assert {"train/loss_step", "train/loss_epoch", "train/acc", "val/loss", "val/acc"} <= set(
        logged
    )
    assert 0 <= float(logged["val/acc"]) <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
    assert 0 <= tested["test/acc"] <= 1


# --------------------------------------------------------------------- the weights file
def test_load_classifier_round_trip_is_frozen_and_identical(tmp_path: Path) -> None:
    path = make_classifier_file(tmp_path / "clf.pt")
    torch.manual_seed(0)
    original = MNISTClassifier().eval()
    loaded = load_classifier(path)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    images = torch.rand(3, 1, 32, 32, requires_grad=True)
    assert torch.allclose(loaded(images), original(images))
    loaded(images).sum().backward()  # guidance: gradients still reach the inputs
    assert images.grad is not None
    assert read_classifier_file(path)["dataset"] == "MNIST"


def test_loading_the_classifier_leaves_the_global_random_stream_alone(tmp_path: Path) -> None:
    # A seeded run loads it after seed_everything (metrics, pictures, guidance): building the
    # network must not shift what training draws next, or metrics on/off train differently.
    path = make_classifier_file(tmp_path / "clf.pt")
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    load_classifier(path)
    torch.testing.assert_close(torch.rand(4), expected)


def test_missing_classifier_names_the_path_and_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "MNIST_classifier.pt"
    with pytest.raises(MissingClassifierError) as error:
        load_classifier(missing)
    assert str(missing) in str(error.value) and TRAIN_COMMAND in str(error.value)


class _Payload:
    def __reduce__(self) -> tuple:
        return (print, ("this ran on load",))


def test_classifier_file_holding_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "network": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refused to load classifier"):
        load_classifier(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"state_dict": {}}, "is not a classifier weights file"),
        (b"not a torch file", "not a readable PyTorch file"),
    ],
)
def test_wrong_files_get_a_clear_error(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "wrong.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_classifier(path)


# --------------------------------------------------------------------- config and command
def test_classifier_weights_land_where_gan_runs_look(tmp_path: Path) -> None:
    common = [f"paths.root_dir={tmp_path}", "data.dataset=FashionMNIST"]
    classifier = compose_config("classifier", common)
    gan = compose_config("train", common)
    assert classifier.metrics.classifier_ckpt == gan.metrics.classifier_ckpt
    assert classifier.metrics.classifier_ckpt.endswith("classifier/FashionMNIST_classifier.pt")
    assert classifier.data.image_size == 28 and classifier.trainer.limit_val_batches == 1.0


def test_train_classifier_command_writes_a_loadable_weights_file(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """``launch_training`` runs ``python -m gan_lightning.train_classifier`` as a user would."""
    weights = tmp_path / "classifier" / "MNIST_classifier.pt"
    launch_training(weights, tiny_mnist_root, "MNIST", overrides=["trainer=debug"])
    payload = read_classifier_file(weights)
    assert 0 <= payload["test_accuracy"] <= 1 and payload["dataset"] == "MNIST"
    assert payload["network"]["feature_dim"] == 128
    load_classifier(weights)

    (run,) = (tmp_path / "classifier" / "runs").iterdir()  # next to the weights
    assert (run / "checkpoints" / "last.ckpt").is_file()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/acc", "val/loss", "val/acc", "test/acc"} <= tags


def test_a_classifier_file_naming_a_foreign_callable_is_refused(tmp_path) -> None:
    """weights_only stops pickled code; the network config must not smuggle a callable in."""
    import torch

    victim = tmp_path / "victim.txt"
    victim.write_text("still here")
    path = tmp_path / "evil.pt"
    network = {
        "_target_": "pathlib.Path.unlink",
        "self": {"_target_": "pathlib.Path", "_args_": [str(victim)]},
    }
    torch.save({"state_dict": {}, "network": network}, path)
    with pytest.raises(CheckpointError, match="refused to build"):
        load_classifier(path)
    assert victim.read_text() == "still here"
