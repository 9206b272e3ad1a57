"""``python -m gan_lightning.sample``: the documented .npz format, grids, digits, walks, errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image
from sampling_helpers import compose_config, make_checkpoint, make_classifier_file, run_cli

from gan_lightning import sample as sample_module
from gan_lightning.classifier import load_classifier
from gan_lightning.data.datamodule import to_unit_range
from gan_lightning.errors import SampleError
from gan_lightning.generation import (
    draw_samples,
    find_digit_latent,
    load_generator,
    predict_digits,
    to_mnist_uint8,
)
from gan_lightning.sample import interpolation, sample


@pytest.fixture(scope="module")
def cgan_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """A conditional 28x28 generator with an EMA copy."""
    folder = tmp_path_factory.mktemp("cgan")
    return make_checkpoint(folder, tiny_mnist_root, ["model=cgan", "tricks.ema_decay=0.5"])


@pytest.fixture(scope="module")
def dcgan_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """An unconditional 32x32 generator, whose samples are cropped back to 28x28."""
    folder = tmp_path_factory.mktemp("dcgan")
    return make_checkpoint(folder, tiny_mnist_root, ["model=dcgan"])


@pytest.fixture(scope="module")
def loaded() -> Callable[..., tuple[torch.nn.Module, dict[str, Any]]]:
    """``load_generator`` run once per (checkpoint, use_ema, temperature), handing out copies.

    Loading recomputes BatchNorm statistics on 4,096 noise images, seconds on a CPU; the
    real loader still runs in the CLI test.
    """
    cache: dict[tuple[Path, bool, float | None], tuple[torch.nn.Module, dict[str, Any]]] = {}

    def load(
        path: Path,
        use_ema: bool = True,
        trusted_networks: tuple[str, ...] = (),
        temperature: float | None = None,
    ) -> tuple[torch.nn.Module, dict[str, Any]]:
        key = (Path(path), use_ema, temperature)
        if key not in cache:
            cache[key] = load_generator(path, use_ema, trusted_networks, temperature)
        generator, config = cache[key]
        return copy.deepcopy(generator), config

    return load


@pytest.fixture
def fast_sample(
    monkeypatch: pytest.MonkeyPatch, loaded: Callable[..., Any]
) -> Callable[[DictConfig], Path]:
    """``sample`` with the cached loader."""
    monkeypatch.setattr(sample_module, "load_generator", loaded)
    return sample


def sample_config(ckpt: Path | None, out: Path, *overrides: str) -> DictConfig:
    ckpt_override = [f"ckpt_path={ckpt}"] if ckpt is not None else []
    return compose_config("sample", [*ckpt_override, f"out={out}", "device=cpu", *overrides])


def test_cli_writes_documented_npz_from_ema_weights(
    cgan_ckpt: Path, tmp_path: Path, loaded: Callable[..., Any]
) -> None:
    args = ["num_samples=50", "seed=3", "out=samples.npz"]
    result = run_cli("gan_lightning.sample", [f"ckpt_path={cgan_ckpt}", *args], tmp_path)
    assert result.returncode == 0, result.stderr

    # A relative output lands where the command ran, and nothing else is written there.
    assert [p.name for p in tmp_path.iterdir()] == ["samples.npz"]
    with np.load(tmp_path / "samples.npz") as data:
        assert sorted(data.files) == ["images", "labels"]
        images, labels = data["images"], data["labels"]
    assert images.dtype == np.uint8 and images.shape == (50, 28, 28)
    assert labels.dtype == np.int64 and labels.shape == (50,)
    assert images.min() < images.max()  # real pictures, not a constant
    assert np.bincount(labels, minlength=10).tolist() == [5] * 10

    # Seeded: another process with the same seed draws the same images, from the EMA copy.
    ema, _ = loaded(cgan_ckpt, True)
    expected, expected_labels = draw_samples(ema, 50, seed=3)
    np.testing.assert_array_equal(images, to_mnist_uint8(expected).numpy())
    np.testing.assert_array_equal(labels, expected_labels.numpy())
    live, _ = loaded(cgan_ckpt, False)
    assert not torch.equal(draw_samples(live, 50, seed=3)[0], expected)


def test_cli_reports_errors_without_traceback(tmp_path: Path) -> None:
    result = run_cli("gan_lightning.sample", [f"ckpt_path={tmp_path}/missing.ckpt"], tmp_path)
    assert result.returncode == 1
    assert "missing.ckpt does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unconditional_32px_samples_are_cropped_to_mnist(
    dcgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path], loaded: Callable[..., Any]
) -> None:
    out = fast_sample(sample_config(dcgan_ckpt, tmp_path / "s.npz", "num_samples=12"))
    with np.load(out) as data:
        assert data.files == ["images"]  # no labels for an unconditional generator
        images = data["images"]
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8

    generator, _ = loaded(dcgan_ckpt)
    full, labels = draw_samples(generator, 12, seed=0)
    assert labels is None and full.shape[-1] == 32
    expected = ((full[:, 0, 2:-2, 2:-2] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    np.testing.assert_array_equal(images, expected.numpy())


def test_samples_depend_on_seed_only(dcgan_ckpt: Path, loaded: Callable[..., Any]) -> None:
    generator, _ = loaded(dcgan_ckpt)
    small_batches, _ = draw_samples(generator, 20, seed=5, batch_size=3)
    one_batch, _ = draw_samples(generator, 20, seed=5, batch_size=500)
    torch.testing.assert_close(small_batches, one_batch)
    other_seed, _ = draw_samples(generator, 20, seed=6)
    assert not torch.allclose(one_batch, other_seed)


def test_uint8_conversion_inverts_the_data_scaling() -> None:
    pixels = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    padded = F.pad(to_unit_range(pixels)[:, None], (2, 2, 2, 2), value=-1)
    assert torch.equal(to_mnist_uint8(padded), pixels)


def test_png_grid_has_one_column_per_digit(
    cgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path]
) -> None:
    out = fast_sample(sample_config(cgan_ckpt, tmp_path / "grid.png", "num_samples=20"))
    with Image.open(out) as image:
        assert image.format == "PNG"
        # 10 columns x 2 rows of 28 px images with 2 px gaps.
        assert image.size == (10 * 30 + 2, 2 * 30 + 2)


def test_digit_asks_a_conditional_generator_for_one_digit(
    cgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path]
) -> None:
    out = fast_sample(sample_config(cgan_ckpt, tmp_path / "sevens.npz", "num_samples=8", "digit=7"))
    with np.load(out) as data:
        assert data["labels"].tolist() == [7] * 8


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["digit=3"], "needs a conditional generator"),
        (["mode=sideways"], "mode=sideways is not one of"),
        (["num_samples=0"], "num_samples=0 must be at least 1"),
        (["mode=interpolate", "from_digit=12"], "from_digit=12 is not a digit"),
        (["mode=interpolate", "steps=1"], "steps=1 must be at least 2"),
        (
            ["mode=interpolate", "from_digit=6", "classifier_ckpt=/nowhere.pt"],
            "need a digit classifier",
        ),
    ],
)
def test_bad_requests_name_the_key(
    dcgan_ckpt: Path,
    tmp_path: Path,
    fast_sample: Callable[..., Path],
    overrides: list[str],
    message: str,
) -> None:
    with pytest.raises(SampleError, match=message):
        fast_sample(sample_config(dcgan_ckpt, tmp_path / "s.npz", *overrides))


def test_missing_ckpt_path_and_bad_suffix_are_refused(
    dcgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path]
) -> None:
    with pytest.raises(SampleError, match="ckpt_path is required"):
        fast_sample(sample_config(None, tmp_path / "s.npz"))
    with pytest.raises(SampleError, match=r"out=.*s\.jpg must end in \.npz or \.png"):
        fast_sample(sample_config(dcgan_ckpt, tmp_path / "s.jpg"))


def test_from_digit_is_refused_for_a_conditional_generator(
    cgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path]
) -> None:
    with pytest.raises(SampleError, match="use digit=<d>"):
        fast_sample(
            sample_config(cgan_ckpt, tmp_path / "i.png", "mode=interpolate", "from_digit=6")
        )


def test_conditional_interpolation_is_one_row_per_digit(
    cgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path]
) -> None:
    cfg = sample_config(cgan_ckpt, tmp_path / "walk.png", "mode=interpolate", "steps=5")
    out = fast_sample(cfg)
    assert out.name == "walk.png"
    with Image.open(out) as image:
        assert image.size == (5 * 30 + 2, 10 * 30 + 2)


def test_interpolation_endpoints_are_the_asked_digits(
    dcgan_ckpt: Path, tmp_path: Path, fast_sample: Callable[..., Path], loaded: Callable[..., Any]
) -> None:
    classifier_path = make_classifier_file(tmp_path / "classifier.pt")
    classifier = load_classifier(classifier_path)
    generator, run_config = loaded(dcgan_ckpt)
    # An untrained judge answers only some digits for these samples: walk between two of them.
    candidates, _ = draw_samples(generator, 256, seed=0)
    answers = predict_digits(classifier, candidates).bincount(minlength=10)
    from_digit, to_digit = answers.argsort(descending=True)[:2].tolist()
    assert answers[to_digit] > 0

    cfg = sample_config(
        dcgan_ckpt,
        tmp_path / "walk.npz",
        "mode=interpolate",
        "steps=6",
        "slerp=true",
        f"from_digit={from_digit}",
        f"to_digit={to_digit}",
        f"classifier_ckpt={classifier_path}",
    )
    images, labels = interpolation(cfg, generator, run_config)
    assert images.shape[0] == 6 and labels is None
    readings = predict_digits(classifier, images)
    assert readings[0] == from_digit and readings[-1] == to_digit

    with np.load(fast_sample(cfg)) as data:
        assert data["images"].shape == (6, 28, 28)


def test_find_digit_latent_fails_clearly_for_an_absent_digit(
    dcgan_ckpt: Path, loaded: Callable[..., Any]
) -> None:
    generator, _ = loaded(dcgan_ckpt)

    class AlwaysThree(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = torch.nn.Parameter(torch.eye(10)[3] * 10)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(images.shape[0], 10)

    z = find_digit_latent(generator, AlwaysThree(), 3, seed=0, candidates=8)
    assert z.shape == (generator.latent_dim,)
    with pytest.raises(SampleError, match="none of 8 samples .* as a 5"):
        find_digit_latent(generator, AlwaysThree(), 5, seed=0, candidates=8)
