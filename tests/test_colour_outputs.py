"""An RGB generator's colour survives every writer: sample files, PNG grids, the annotated grid,
GIFs, the training callbacks and TensorBoard; a 1-channel generator's output stays grey.

A stub G paints each channel its own level (red high, green low, blue near the middle), so a
writer that keeps one channel, averages them or converts to grey shows up as equal channels.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from torch import Tensor, nn

from gan_lightning import pictures
from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.callbacks.training_pictures import TrainingPictures
from gan_lightning.data.npz import NpzDataModule
from gan_lightning.data.splits import hold_out
from gan_lightning.errors import SampleError
from gan_lightning.generation import to_mnist_uint8, write_samples
from gan_lightning.networks.latents import sample_latents

#: The stub's channel levels in [-1, 1], and as uint8 pixels, (x + 1) * 127.5.
LEVELS = (0.6, -0.6, 0.2)
COLOUR = (204, 51, 153)


class StubGenerator(nn.Module):
    """An unconditional G of ``channels`` channels: each channel one level, blue nudged by z."""

    num_classes = 0
    latent_dim = 4

    def __init__(self, channels: int, size: int = 28) -> None:
        super().__init__()
        self.channels, self.size = channels, size
        self.gain = nn.Parameter(torch.ones(()))  # gives the callers a device to read

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        levels = torch.tensor(LEVELS[-self.channels :])  # grey: the middle level alone
        planes = levels[None, :, None, None] + 0.02 * torch.tanh(z[:, :1, None, None]) * (
            torch.arange(len(levels)) == len(levels) - 1
        ).view(1, -1, 1, 1)
        return (self.gain * planes).expand(-1, -1, self.size, self.size)


def batch(channels: int, count: int = 8, size: int = 28) -> Tensor:
    z = torch.randn(count, StubGenerator.latent_dim, generator=torch.Generator().manual_seed(0))
    return StubGenerator(channels, size)(z).detach()


def coloured(array: np.ndarray, tolerance: int = 0) -> int:
    """Pixels of an [H, W, 3] array whose channels differ by more than ``tolerance``."""
    spread = array.astype(int).max(axis=-1) - array.astype(int).min(axis=-1)
    return int((spread > tolerance).sum())


def near(array: np.ndarray, colour: tuple[int, int, int], tolerance: int = 3) -> int:
    return int((np.abs(array.astype(int) - colour).max(axis=-1) <= tolerance).sum())


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# ------------------------------------------------------------------------------ sample files
def test_uint8_samples_keep_colour_channels_last() -> None:
    rgb = batch(3, size=32)
    pixels = to_mnist_uint8(rgb)
    assert pixels.shape == (8, 28, 28, 3) and pixels.dtype == torch.uint8
    for channel in range(3):  # each channel exactly as a 1-channel G's would be written
        assert torch.equal(pixels[..., channel], to_mnist_uint8(rgb[:, channel : channel + 1]))
    assert tuple(pixels[0, 0, 0, :2].tolist()) == COLOUR[:2]
    assert to_mnist_uint8(batch(1)).shape == (8, 28, 28)
    with pytest.raises(SampleError, match="2-channel images; .* 1 \\(grayscale\\) or 3 \\(RGB\\)"):
        to_mnist_uint8(torch.zeros(2, 2, 28, 28))


def test_rgb_sample_file_trains_back_as_rgb(tmp_path: Path) -> None:
    """``sample``'s .npz of an RGB G is [N, H, W, 3], and ``data=npz`` reads exactly it back."""
    labels = torch.arange(20) % 4
    images = batch(3, count=20, size=32)
    write_samples(tmp_path / "rgb.npz", images, labels, nrow=5)
    with np.load(tmp_path / "rgb.npz", allow_pickle=False) as data:
        written = torch.from_numpy(data["images"])
    assert written.shape == (20, 28, 28, 3)
    assert tuple(written[0, 0, 0, :2].tolist()) == COLOUR[:2]

    module = NpzDataModule(str(tmp_path / "rgb.npz"), channels=3, batch_size=2, test_fraction=0.25)
    module.setup("fit")
    train, test = hold_out(labels, 0.25, 0, "rgb")
    as_read = written.permute(0, 3, 1, 2)
    assert torch.equal(module.split_tensors("train")[0], as_read[train])
    assert torch.equal(module.split_tensors("test")[0], as_read[test])
    assert torch.equal(module.split_tensors("test")[1], labels[test])


@pytest.mark.parametrize("channels", [1, 3])
def test_png_sample_grid_keeps_each_pixel(tmp_path: Path, channels: int) -> None:
    images = batch(channels, count=4)
    grid = read_rgb(write_samples(tmp_path / "grid.png", images, None, nrow=2))
    first = grid[2:30, 2:30]  # the first image, inside the 2 px white gap
    expected = to_mnist_uint8(images)[0].numpy()
    np.testing.assert_array_equal(first, np.broadcast_to(expected.reshape(28, 28, -1), first.shape))
    assert (coloured(grid) > 0) == (channels == 3)


# ------------------------------------------------------------------------------ pictures
def test_annotated_grid_shows_rgb_samples_in_colour(tmp_path: Path) -> None:
    targets = torch.arange(10)
    rgb = pictures.save_annotated_grid(batch(3, 10), targets, targets, tmp_path / "rgb.png")
    grey = pictures.save_annotated_grid(batch(1, 10), targets, targets, tmp_path / "grey.png")
    assert near(read_rgb(rgb), COLOUR) > 28 * 28  # at least one sample's worth of pixels
    assert near(read_rgb(grey), COLOUR) == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_gif_frames_keep_their_colour(tmp_path: Path, channels: int) -> None:
    frames = [
        pictures.save_grid(batch(channels, 4) * scale, tmp_path / f"e{i}.png", 2)
        for i, scale in enumerate((1.0, 0.5))
    ]
    gif = pictures.save_gif(frames, tmp_path / "p.gif", ["epoch 0", "epoch 1"])
    with Image.open(gif) as animation:
        shown = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(animation)]
    assert len(shown) == 2
    for frame, png in zip(shown, frames, strict=True):
        below_caption = frame[14:]
        if channels == 1:  # 8-bit grey: exact
            np.testing.assert_array_equal(below_caption, read_rgb(png))
            assert coloured(frame) == 0
        else:  # a palette per frame: a few colours come through as they are
            assert np.abs(below_caption.astype(int) - read_rgb(png)).max() <= 2
            assert coloured(below_caption, tolerance=50) > 4 * 28 * 28 - 100


# ------------------------------------------------------------------------------ callbacks
def tensorboard_images(log_dir: str) -> dict[str, tuple[np.ndarray, int]]:
    """Each image tag's last picture (decoded) and its summary's colorspace.

    The legacy loader hands out the events as written; the current one turns images into
    tensors, dropping the colorspace.
    """
    colorspaces = {}
    for event_file in Path(log_dir).glob("events.out.tfevents.*"):
        for event in LegacyEventFileLoader(str(event_file)).Load():
            for value in event.summary.value:
                if value.HasField("image"):
                    colorspaces[value.tag] = value.image.colorspace
    accumulator = EventAccumulator(log_dir, size_guidance={"images": 0})
    accumulator.Reload()
    decoded = {}
    for tag in accumulator.Tags()["images"]:
        encoded = accumulator.Images(tag)[-1].encoded_image_string
        with Image.open(io.BytesIO(encoded)) as image:
            decoded[tag] = (np.asarray(image.convert("RGB")), colorspaces[tag])
    return decoded


@pytest.mark.parametrize("channels", [1, 3])
def test_callbacks_draw_an_rgb_generator_in_colour(tmp_path: Path, channels: int) -> None:
    """SampleGrid's epoch grids and every end-of-training picture, on disk and in TensorBoard."""
    generator = StubGenerator(channels)
    logger = TensorBoardLogger(str(tmp_path), name="tensorboard", version="")
    logger.experiment.add_scalar("loss/d_step", 1.0, 0)  # what the loss curves are read from
    real = batch(channels, 16).flip(1)  # colour too, in another order
    datamodule = SimpleNamespace(real_images=lambda split, count: real[:count], num_train=16)
    trainer = SimpleNamespace(
        current_epoch=0,
        max_epochs=2,
        is_global_zero=True,
        default_root_dir=str(tmp_path),
        loggers=[logger],
        datamodule=datamodule,
    )
    fixed_noise = sample_latents(generator, 16, rng=torch.Generator().manual_seed(0))
    module = SimpleNamespace(
        sampling_generator=lambda: generator,
        fixed_noise=fixed_noise,
        fixed_labels=None,
        conditional=False,
    )
    for epoch in range(2):
        trainer.current_epoch = epoch
        SampleGrid(nrow=4).on_train_epoch_end(trainer, module)
    trainer.current_epoch = 2
    TrainingPictures(num_real=16, interpolation_steps=3, interpolation_rows=2).on_train_end(
        trainer, module
    )

    is_colour = channels == 3
    folder = tmp_path / "pictures"
    for path in [
        tmp_path / "samples" / "epoch_001.png",
        folder / "final_samples_10x10.png",
        folder / "interpolation.png",
    ]:
        assert (near(read_rgb(path), COLOUR, tolerance=10) > 28 * 28) == is_colour, path.name
        assert (coloured(read_rgb(path)) > 0) == is_colour, path.name
    halves = np.array_split(read_rgb(folder / "real_vs_fake.png"), 2, axis=1)
    assert [coloured(half, tolerance=50) > 28 * 28 for half in halves] == [is_colour] * 2
    with Image.open(folder / "progress.gif") as gif:
        assert gif.n_frames == 2
        assert (coloured(np.asarray(gif.convert("RGB")), tolerance=50) > 0) == is_colour

    shown = tensorboard_images(logger.log_dir)
    assert {"samples/fixed_noise", "pictures/progress", "pictures/final_samples_10x10"} <= set(
        shown
    )
    for tag, (image, colorspace) in shown.items():
        if tag != "pictures/loss_curves":  # a chart: coloured lines whatever G draws
            assert (coloured(image, tolerance=50) > 0) == is_colour, tag
        if tag == "pictures/progress":
            assert colorspace == (3 if is_colour else 1)
