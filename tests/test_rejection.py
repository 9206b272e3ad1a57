"""Discriminator rejection sampling (``rejection.keep``) in ``sample`` and ``evaluate``."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from rich.console import Console
from sampling_helpers import compose_config, make_checkpoint, make_classifier_file, train_config
from torch import Tensor, nn

from gan_lightning import evaluate as evaluate_module
from gan_lightning import sample as sample_module
from gan_lightning.build import build_gan_module
from gan_lightning.errors import CheckpointError, ConfigError, SampleError
from gan_lightning.evaluate import evaluate, results_table
from gan_lightning.generation import balanced_labels, draw_samples, load_generator, to_mnist_uint8
from gan_lightning.rejection import (
    best_per_class,
    candidate_labels,
    discriminator_scores,
    rejection_sample,
)
from gan_lightning.runs.checkpoints import load_discriminator
from gan_lightning.sample import sample


class FirstLatentGenerator(nn.Module):
    """Every pixel of image i is ``z[i, 0] + 10 * label``: the image tells its latent and class."""

    latent_dim = 4

    def __init__(self, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.unused = nn.Parameter(torch.zeros(()))  # a device to read, as real networks have

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        value = z[:, 0] if labels is None else z[:, 0] + 10 * labels
        return value.reshape(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()


class MeanPixelDiscriminator(nn.Module):
    """Scores an image by its mean pixel: a known score for every candidate."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        return images.mean(dim=(1, 2, 3))


def first_latents(count: int, seed: int) -> Tensor:
    """``z[:, 0]`` of the candidates: the same draw ``sample_latents`` makes from ``seed``."""
    return torch.randn(
        (count, FirstLatentGenerator.latent_dim), generator=torch.Generator().manual_seed(seed)
    )[:, 0]


def test_best_per_class_keeps_the_top_scores_in_draw_order() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, -1.0, 0.7])
    one_class = torch.zeros(6, dtype=torch.long)
    # 0.9 (1), 0.9 (3), 0.7 (5): the tie at 0.9 keeps both, earlier first; then draw order.
    assert best_per_class(scores, one_class, torch.zeros(3, dtype=torch.long)).tolist() == [1, 3, 5]
    assert best_per_class(scores, one_class, torch.zeros(1, dtype=torch.long)).tolist() == [1]

    classes = torch.tensor([0, 1, 0, 1, 0, 1])
    # class 0 holds 0.1, 0.5, -1.0 (best: index 2); class 1 holds 0.9, 0.9, 0.7 (best: 1, 3).
    wanted = torch.tensor([0, 1, 1])
    assert best_per_class(scores, classes, wanted).tolist() == [2, 1, 3]


def test_rejection_keeps_exactly_the_best_scored_candidates() -> None:
    generator, discriminator = FirstLatentGenerator(), MeanPixelDiscriminator()
    images, labels = rejection_sample(generator, discriminator, 7, seed=3, keep=0.3, batch_size=4)
    assert labels is None and images.shape == (7, 1, 28, 28)

    candidates = first_latents(math.ceil(7 / 0.3), seed=3)  # 24 scores, known in advance
    by_score = sorted(range(len(candidates)), key=lambda i: -float(candidates[i]))
    expected = candidates[sorted(by_score[:7])]  # the 7 best, in the order they were drawn
    torch.testing.assert_close(images[:, 0, 0, 0], expected)


def test_conditional_rejection_keeps_the_promised_labels() -> None:
    generator, discriminator = FirstLatentGenerator(num_classes=10), MeanPixelDiscriminator()
    # D rates high digits far above low ones: a global top-25 would keep 8s and 9s only.
    images, labels = rejection_sample(generator, discriminator, 25, seed=0, keep=0.3)
    assert torch.equal(labels, balanced_labels(25, 10))
    drawn_as = (images[:, 0, 0, 0] / 10).round().long()
    assert torch.equal(drawn_as, labels)  # each image really is of its slot's class

    candidates = candidate_labels(balanced_labels(25, 10), 0.3)
    # 3 asked of digits 0-4 -> 10 candidates each; 2 of digits 5-9 -> ceil(6.67) = 7 each.
    assert candidates.bincount().tolist() == [10] * 5 + [7] * 5
    assert candidates[:10].tolist() == list(range(10))  # interleaved as the plain sampler's
    latents = first_latents(candidates.shape[0], seed=0)
    for digit in range(10):
        mine = latents[candidates == digit]
        kept = images[labels == digit, 0, 0, 0] - 10 * digit
        best = mine.sort(descending=True).values[: kept.shape[0]]
        torch.testing.assert_close(kept.sort(descending=True).values, best)

    sevens, seven_labels = rejection_sample(generator, discriminator, 4, 0, keep=0.5, digit=7)
    assert seven_labels.tolist() == [7] * 4 and (sevens[:, 0, 0, 0] / 10).round().eq(7).all()


@pytest.mark.parametrize("num_classes", [0, 10])
def test_keep_one_is_the_plain_sampler(num_classes: int) -> None:
    generator = FirstLatentGenerator(num_classes)
    kept, kept_labels = rejection_sample(generator, MeanPixelDiscriminator(), 23, 5, keep=1.0)
    plain, plain_labels = draw_samples(generator, 23, seed=5)
    assert torch.equal(kept, plain)
    assert (kept_labels is None) == (num_classes == 0)
    if num_classes:
        assert torch.equal(kept_labels, plain_labels)


def test_candidate_counts_survive_floating_point() -> None:
    # 3 / 0.1 is 30.000000000000004: a naive ceil would draw 31.
    assert candidate_labels(torch.zeros(3, dtype=torch.long), 0.1).shape == (30,)


# --------------------------------------------------------------- checkpoints and commands
@pytest.fixture(scope="module")
def cgan_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """A conditional generator with an EMA copy and a projection discriminator."""
    folder = tmp_path_factory.mktemp("cgan")
    return make_checkpoint(folder, tiny_mnist_root, ["model=cgan", "tricks.ema_decay=0.5"])


@pytest.fixture(scope="module")
def spectral_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """An untrained 32x32 DCGAN whose D has spectral norm, saved with what `train` saves.

    Its D's state holds parametrized weights (``original``, ``_u``, ``_v``); no training is
    needed to test that they load, so no Trainer runs.
    """
    folder = tmp_path_factory.mktemp("dcgan_sn")
    overrides = ["model=dcgan", "tricks.spectral_norm=true"]
    module = build_gan_module(train_config(folder, tiny_mnist_root, overrides))
    path = folder / "gan.ckpt"
    torch.save({"state_dict": module.state_dict(), "run_config": module.run_config}, path)
    return path


@pytest.fixture(scope="module")
def no_discriminator_ckpt(cgan_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cgan_ckpt`` with every ``discriminator.*`` weight removed (a generator-only export)."""
    checkpoint = torch.load(cgan_ckpt, map_location="cpu", weights_only=True)
    checkpoint["state_dict"] = {
        key: value
        for key, value in checkpoint["state_dict"].items()
        if not key.startswith("discriminator.")
    }
    path = tmp_path_factory.mktemp("no_d") / "generator_only.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def cgan_generator(cgan_ckpt: Path) -> tuple[nn.Module, dict[str, Any]]:
    """``load_generator(cgan_ckpt)`` once: it recomputes BatchNorm statistics, seconds on a CPU."""
    return load_generator(cgan_ckpt)


@pytest.fixture
def cached_generator(
    cgan_ckpt: Path,
    cgan_generator: tuple[nn.Module, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> nn.Module:
    """``sample`` and ``evaluate`` get copies of ``cgan_generator`` instead of loading it again."""

    def load(
        path: str | Path,
        use_ema: bool = True,
        trusted_networks: tuple[str, ...] = (),
        temperature: float | None = None,
    ) -> tuple[nn.Module, dict[str, Any]]:
        assert Path(path) == cgan_ckpt and use_ema and trusted_networks == ()
        assert temperature is None  # the run's own
        return copy.deepcopy(cgan_generator[0]), cgan_generator[1]

    monkeypatch.setattr(sample_module, "load_generator", load)
    monkeypatch.setattr(evaluate_module, "load_generator", load)
    return cgan_generator[0]


def sample_config(ckpt: Path, out: Path, *overrides: str) -> DictConfig:
    return compose_config("sample", [f"ckpt_path={ckpt}", f"out={out}", "device=cpu", *overrides])


def test_discriminator_is_rebuilt_as_trained(spectral_ckpt: Path, cgan_ckpt: Path) -> None:
    discriminator, config = load_discriminator(spectral_ckpt)
    assert config["tricks"]["spectral_norm"] and not discriminator.training
    assert not any(p.requires_grad for p in discriminator.parameters())
    checkpoint = torch.load(spectral_ckpt, map_location="cpu", weights_only=True)
    saved = checkpoint["state_dict"]
    for key, value in discriminator.state_dict().items():
        assert torch.equal(value, saved[f"discriminator.{key}"]), key

    conditional, _ = load_discriminator(cgan_ckpt)
    images = torch.rand(6, 1, 28, 28) * 2 - 1
    scores = discriminator_scores(conditional, images, torch.arange(6), batch_size=4)
    # Eval mode: a score depends on its image alone, not on the batch it was scored in.
    torch.testing.assert_close(
        scores[:2], discriminator_scores(conditional, images[:2], torch.arange(2))
    )


def test_sample_writes_the_best_rated_and_records_keep(
    cgan_ckpt: Path, tmp_path: Path, cached_generator: nn.Module
) -> None:
    out = sample(
        sample_config(cgan_ckpt, tmp_path / "kept.npz", "num_samples=30", "rejection.keep=0.5")
    )
    with np.load(out, allow_pickle=False) as data:
        assert sorted(data.files) == ["images", "labels", "rejection_keep"]
        images, labels, keep = data["images"], data["labels"], data["rejection_keep"]
    assert keep.dtype == np.float64 and float(keep) == 0.5
    assert labels.tolist() == balanced_labels(30, 10).tolist()

    generator = cached_generator
    discriminator, _ = load_discriminator(cgan_ckpt)
    expected, _ = rejection_sample(generator, discriminator, 30, seed=0, keep=0.5)
    np.testing.assert_array_equal(images, to_mnist_uint8(expected).numpy())
    plain, _ = draw_samples(generator, 30, seed=0)
    assert not np.array_equal(images, to_mnist_uint8(plain).numpy())


def test_unconditional_spectral_norm_checkpoint_samples_with_rejection(
    spectral_ckpt: Path, tmp_path: Path
) -> None:
    out = sample(
        sample_config(spectral_ckpt, tmp_path / "s.npz", "num_samples=9", "rejection.keep=0.25")
    )
    with np.load(out, allow_pickle=False) as data:
        assert sorted(data.files) == ["images", "rejection_keep"]
        assert data["images"].shape == (9, 28, 28)


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("0", "0"),
        ("1.5", "1.5"),
        ("-0.5", "-0.5"),
        ("half", "'half'"),
        ("true", "True"),
        ("nan", "nan"),
    ],
)
def test_bad_keep_is_refused_by_name(
    cgan_ckpt: Path, tmp_path: Path, override: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_module, "load_generator", _must_not_load)
    monkeypatch.setattr(evaluate_module, "load_generator", _must_not_load)
    message = (
        rf"rejection.keep={re.escape(shown)} is not allowed; it must be null \(off\) or the share"
    )
    with pytest.raises(ConfigError, match=message):
        sample(sample_config(cgan_ckpt, tmp_path / "s.npz", f"rejection.keep={override}"))
    cfg = compose_config("evaluate", [f"ckpt_path={cgan_ckpt}", f"rejection.keep={override}"])
    with pytest.raises(ConfigError, match=message):
        evaluate(cfg)
    assert list(tmp_path.iterdir()) == []


def _must_not_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("a refused request must not load (or draw from) the generator")


def test_rejection_is_refused_for_a_walk(cgan_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(SampleError, match="rejection.keep=0.5 chooses among random samples"):
        sample(
            sample_config(cgan_ckpt, tmp_path / "w.png", "mode=interpolate", "rejection.keep=0.5")
        )


def test_checkpoint_without_discriminator_is_refused_before_drawing(
    no_discriminator_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_module, "load_generator", _must_not_load)
    monkeypatch.setattr(evaluate_module, "load_generator", _must_not_load)
    cfg = sample_config(no_discriminator_ckpt, tmp_path / "s.npz", "rejection.keep=0.5")
    with pytest.raises(CheckpointError) as caught:
        sample(cfg)
    message = str(caught.value)
    assert f"{no_discriminator_ckpt} holds no discriminator" in message
    assert "rejection.keep=0.5 needs one" in message and "leave out rejection.keep=0.5" in message
    out = tmp_path / "eval.json"
    cfg = compose_config(
        "evaluate", [f"ckpt_path={no_discriminator_ckpt}", "rejection.keep=0.5", f"out={out}"]
    )
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        evaluate(cfg)
    assert list(tmp_path.iterdir()) == []


def test_a_classifier_file_is_not_a_gan_checkpoint(tmp_path: Path) -> None:
    classifier = make_classifier_file(tmp_path / "classifier.pt")
    with pytest.raises(CheckpointError, match="holds no gan-lightning run config"):
        load_discriminator(classifier)


def test_evaluate_reports_rejection_beside_the_plain_row(
    cgan_ckpt: Path, tmp_path: Path, cached_generator: nn.Module
) -> None:
    classifier = make_classifier_file(tmp_path / "classifier" / "MNIST_classifier.pt")
    out = tmp_path / "eval.json"
    cfg = compose_config(
        "evaluate",
        [
            f"ckpt_path={cgan_ckpt}",
            f"classifier_ckpt={classifier}",
            "num_samples=40",
            "batch_size=16",
            "device=cpu",
            "real_floor=false",
            "rejection.keep=0.5",
            f"out={out}",
        ],
    )
    report = evaluate(cfg)
    assert json.loads(out.read_text()) == report
    assert report["settings"]["rejection_keep"] == 0.5
    plain, rejected = report["runs"]
    assert plain["rejection_keep"] is None and rejected["rejection_keep"] == 0.5
    assert plain["run"] == rejected["run"] and plain["ckpt_path"] == rejected["ckpt_path"]
    for row in (plain, rejected):
        assert row["num_fake"] == 40
        for key in ("fid", "precision", "recall", "min_class_fraction", "cond_acc"):
            assert math.isfinite(row[key]), key
    assert plain["fid"] != rejected["fid"]  # other images were scored

    console = Console(width=300, record=True)
    console.print(results_table(report["runs"], None))
    text = console.export_text()
    assert f"{plain['run']} + rejection (keep 0.5)" in text
    assert "Read them against the run's row above" in text
    rows = [line for line in text.splitlines() if plain["run"] in line]
    assert len(rows) == 2 and "+ rejection" not in rows[0] and "+ rejection" in rows[1]
