"""Every picture: each drawing function alone, then the end-of-training callback on a real run."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from PIL import Image, ImageSequence
from sampling_helpers import make_classifier_file, train_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from gan_lightning import pictures
from gan_lightning.build import build_gan_module, build_trainer
from gan_lightning.callbacks.summary import count_parameters
from gan_lightning.callbacks.training_pictures import TrainingPictures, picture_tag
from gan_lightning.gan import ema

GREEN = (44, 160, 44)  # matplotlib's tab:green
RED = (214, 39, 40)  # tab:red


def images(count: int, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def pixels_near(array: np.ndarray, color: tuple[int, int, int], tolerance: int = 30) -> int:
    return int((np.abs(array.astype(int) - color).max(axis=-1) < tolerance).sum())


# ---------------------------------------------------------------------------- functions
def test_grid_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    path = pictures.save_grid(images(100), tmp_path / "deep" / "grid.png", nrow=10)
    # 10 x 10 images of 28 px with 2 px white gaps around each.
    assert rgb(path).shape == (302, 302, 3)
    assert (rgb(path)[0] == 255).all()


def test_annotated_grid_colours_agreement(tmp_path: Path) -> None:
    targets = torch.arange(30) % 10
    answers = targets.clone()
    answers[[4, 17]] = 0  # two disagreements
    assert pictures.agreement(targets, answers) == pytest.approx(28 / 30)

    mixed = rgb(pictures.save_annotated_grid(images(30), targets, answers, tmp_path / "a.png"))
    agreed = rgb(pictures.save_annotated_grid(images(30), targets, targets, tmp_path / "b.png"))
    assert mixed.shape == agreed.shape == (375, 950, 3)  # 9.5 x 3.75 inches at 100 dpi
    assert pixels_near(mixed, GREEN) > 0 and pixels_near(mixed, RED) > 0
    assert pixels_near(agreed, GREEN) > 0 and pixels_near(agreed, RED) == 0

    with pytest.raises(ValueError, match="30 images need as many targets"):
        pictures.save_annotated_grid(images(30), targets[:5], answers, tmp_path / "c.png")


def test_gif_has_one_captioned_frame_per_png(tmp_path: Path) -> None:
    frames = [pictures.save_grid(images(4, seed=i), tmp_path / f"e{i}.png", 2) for i in range(3)]
    gif = pictures.save_gif(frames, tmp_path / "p.gif", ["epoch 0", "epoch 1", "epoch 2"], 100)
    with Image.open(gif) as animation:
        assert animation.format == "GIF"
        assert animation.n_frames == 3
        assert animation.size == (62, 62 + 14)  # the grid below a 14 px caption band
        assert animation.info["loop"] == 0
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(animation)]
    assert durations == [100, 100, 2000]

    with pytest.raises(ValueError, match="at least one PNG"):
        pictures.save_gif([], tmp_path / "empty.gif")
    odd = pictures.save_grid(images(9), tmp_path / "odd.png", 3)
    with pytest.raises(ValueError, match="share one size"):
        pictures.save_gif([frames[0], odd], tmp_path / "odd.gif")


def test_lerp_and_slerp_join_the_endpoints() -> None:
    rng = torch.Generator().manual_seed(0)
    start, end = torch.randn(2, 3, 100, generator=rng)
    for spherical in (False, True):
        path = pictures.interpolate(start, end, 7, spherical)
        assert path.shape == (3, 7, 100)
        torch.testing.assert_close(path[:, 0], start)
        torch.testing.assert_close(path[:, -1], end)
    # Between endpoints of equal norm, the great circle keeps that norm; the chord dips inside.
    end = end / end.norm(dim=-1, keepdim=True) * start.norm(dim=-1, keepdim=True)
    middle_slerp = pictures.interpolate(start, end, 3, spherical=True)[:, 1]
    middle_lerp = pictures.interpolate(start, end, 3)[:, 1]
    torch.testing.assert_close(middle_slerp.norm(dim=-1), start.norm(dim=-1))
    assert (middle_lerp.norm(dim=-1) < 0.9 * start.norm(dim=-1)).all()
    # Parallel endpoints have no plane to rotate in: slerp falls back to the straight line.
    same = pictures.interpolate(start, 2 * start, 3, spherical=True)
    assert torch.isfinite(same).all()
    torch.testing.assert_close(same[:, 1], 1.5 * start)
    with pytest.raises(ValueError, match="steps >= 2"):
        pictures.interpolate(start, end, 1)


def test_real_vs_fake_puts_two_grids_side_by_side(tmp_path: Path) -> None:
    real = -torch.ones(64, 1, 28, 28)  # black digits' background
    fake = torch.ones(64, 1, 28, 28)  # white
    array = rgb(pictures.save_real_vs_fake(real, fake, tmp_path / "rf.png"))
    assert array.shape == (534, 1008, 3)
    left, right = array[:, : array.shape[1] // 2], array[:, array.shape[1] // 2 :]
    assert (left < 10).all(axis=-1).sum() > 100_000  # the black real grid is on the left
    assert (right < 10).all(axis=-1).sum() < 5_000  # only title text on the right


def write_events(folder: Path, tags: list[str], steps: int = 6) -> None:
    writer = SummaryWriter(str(folder))
    for step in range(steps):
        for tag in tags:
            writer.add_scalar(tag, 1.0 / (step + 1), step)
    writer.close()


def test_loss_curves_are_read_from_event_files(tmp_path: Path) -> None:
    tags = ["loss/d_step", "loss/g_step", "loss/d_epoch", "D(x)_step", "D(G(z))_step"]
    write_events(tmp_path / "tb", tags)
    assert pictures.read_scalars(tmp_path / "tb")["loss/g_step"][0] == list(range(6))
    path = pictures.save_loss_curves(tmp_path / "tb", tmp_path / "loss.png")
    assert rgb(path).shape == (450, 1200, 3)

    write_events(tmp_path / "other", ["accuracy"])
    with pytest.raises(ValueError, match=r"none of the scalars .* \(found: \['accuracy'\]\)"):
        pictures.save_loss_curves(tmp_path / "other", tmp_path / "none.png")


def test_picture_tags_drop_the_accuracy() -> None:
    assert picture_tag(Path("annotated_samples_acc=97.png")) == "annotated_samples"
    assert picture_tag(Path("progress.gif")) == "progress"


# ---------------------------------------------------------------------------- the callback
@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path
) -> Iterator[tuple[Path, pl.Trainer, pl.LightningModule]]:
    """A 2-epoch conditional run through the real callbacks config, with a classifier file."""
    folder = tmp_path_factory.mktemp("pictures_run")
    # BatchNorm statistics from 2 noise batches instead of 16 (three times per run here):
    # what the digits look like does not matter to these tests, seconds on a CPU do.
    quick_copy = functools.partial(ema.sampling_copy, batches=2)
    cfg = train_config(
        folder,
        tiny_mnist_root,
        [
            "model=cgan",
            "trainer=debug",
            "trainer.limit_train_batches=2",
            "~callbacks.progress_bar",
            "~callbacks.generative_metrics",  # FID & co. would judge every epoch with the file
        ],
    )
    make_classifier_file(Path(cfg.metrics.classifier_ckpt))
    pl.seed_everything(0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ema, "sampling_copy", quick_copy)
        module = build_gan_module(cfg)
        trainer = build_trainer(cfg, enable_progress_bar=False)
        trainer.fit(module, datamodule=instantiate(cfg.data))
        yield folder / "run", trainer, module


def test_training_ends_with_every_picture(
    finished_run: tuple[Path, pl.Trainer, pl.LightningModule],
) -> None:
    run, _, module = finished_run
    folder = run / "pictures"
    names = sorted(path.name for path in folder.iterdir())
    annotated = [name for name in names if name.startswith("annotated_samples_acc=")]
    assert len(annotated) == 1 and re.fullmatch(r"annotated_samples_acc=\d{1,3}\.png", annotated[0])
    assert sorted(set(names) - set(annotated)) == [
        "final_samples_10x10.png",
        "interpolation.png",
        "loss_curves.png",
        "progress.gif",
        "real_vs_fake.png",
    ]
    assert rgb(folder / "final_samples_10x10.png").shape == (302, 302, 3)
    assert rgb(folder / "interpolation.png").shape == (302, 302, 3)  # 10 digits x 10 steps
    assert rgb(folder / "loss_curves.png").shape == (450, 1200, 3)
    assert rgb(folder / annotated[0]).shape == (375, 950, 3)  # 3 samples per digit
    assert rgb(folder / "real_vs_fake.png").shape[1] > rgb(folder / "real_vs_fake.png").shape[0]
    with Image.open(folder / "progress.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 2  # one fixed-noise grid per epoch

    # Seed 003's parameter table, written at the start of the run.
    table = (run / "parameters.md").read_text()
    assert f"| generator | {count_parameters(module.generator):,} |" in table
    assert f"| discriminator | {count_parameters(module.discriminator):,} |" in table

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {f"pictures/{picture_tag(folder / name)}" for name in names} <= set(
        events.Tags()["images"]
    )


def test_pictures_are_seeded_and_leave_the_global_rng_alone(
    finished_run: tuple[Path, pl.Trainer, pl.LightningModule],
) -> None:
    run, trainer, module = finished_run
    callback = next(c for c in trainer.callbacks if isinstance(c, TrainingPictures))
    before = (run / "pictures" / "final_samples_10x10.png").read_bytes()
    rng_state = torch.get_rng_state()
    callback.on_train_end(trainer, module)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert (run / "pictures" / "final_samples_10x10.png").read_bytes() == before


@pytest.mark.parametrize(
    ("outputs", "bounded"), [(("D(x)", "D(G(z))"), True), (("D_score(x)", "D_score(G(z))"), False)]
)
def test_d_outputs_share_the_probability_range_only_when_they_are_probabilities(
    outputs: tuple[str, str], bounded: bool
) -> None:
    scalars = {f"{name}_step": ([0, 1, 2], [3.0, -4.0, 5.0]) for name in outputs}
    panel = pictures.loss_curves(scalars).axes[1]
    assert [line.get_label() for line in panel.lines] == list(outputs)
    low, high = panel.get_ylim()
    assert (high < 1.1) if bounded else (low < -4 and high > 5)


def test_annotations_name_the_classes_when_the_data_names_them() -> None:
    digits = [str(i) for i in range(10)]
    fashion = ["T-shirt/top", "Trouser", *(f"class {i}" for i in range(2, 9)), "Ankle boot"]
    assert pictures.annotation(3, 5) == pictures.annotation(3, 5, digits) == "T:3 C:5"
    assert pictures.annotation(9, 1, fashion) == "T:Ankle boot\nC:Trouser"
