"""The seed projects' end-of-training pictures, in ``<run>/pictures/`` and in TensorBoard.

All noise comes from a dedicated seeded ``torch.Generator``: drawing pictures never consumes the
global RNG, so a resumed run replays the same random stream as an uninterrupted one, and the
same run always gets the same pictures.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor, nn
from torchvision.io import ImageReadMode, decode_image

from gan_lightning import pictures
from gan_lightning.callbacks.tensorboard import tensorboard_logger
from gan_lightning.compat import event_writer
from gan_lightning.generation import balanced_labels, generate, predict_digits, walk
from gan_lightning.networks.latents import sample_latents
from gan_lightning.rules import Rule, int_at_least, is_bool, is_int, refuse_broken

_EPOCH_FILE = re.compile(r"epoch_(\d+)\.png")
#: ``Summary.Image.colorspace`` values (TensorBoard's summary.proto).
GREY, RGB = 1, 3


class TrainingPictures(pl.Callback):
    """At the end of ``fit``, draws every picture the seed projects show for a finished run.

    ``final_samples_10x10.png`` (100 samples; for a conditional G column c is digit c),
    ``progress.gif`` (the per-epoch fixed-noise grids of ``SampleGrid``), ``loss_curves.png``
    (from the run's TensorBoard events), ``real_vs_fake.png``, ``interpolation.png`` and, for a
    conditional G when ``classifier_ckpt`` exists, ``annotated_samples_acc=NN.png``. Each also
    goes to TensorBoard's IMAGES tab under ``pictures/``.

    Args:
        seed: seeds the noise of every picture.
        classifier_ckpt: digit classifier for the annotated grid (``metrics.classifier_ckpt``);
            the grid is skipped, with a message, when the file does not exist.
        num_real: real and generated images in ``real_vs_fake.png``.
        interpolation_steps: images per walk in ``interpolation.png``.
        interpolation_rows: walks between random latent pairs (unconditional G); a conditional
            G gets one row per digit along the same walk instead, so only the style changes.
        slerp: walk along great circles instead of straight lines (see ``pictures.slerp``).
        annotated_per_digit: samples per digit in the annotated grid (seed 000 showed 3).
        gif_frame_ms: how long each epoch stays on screen in ``progress.gif``.
    """

    #: Its settings' checks: ``config.validate`` reads them from the class the entry's
    #: ``_target_`` names, and the constructor refuses the same values.
    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule("callbacks.training_pictures.seed", is_int, "an integer"),
        *(
            Rule(f"callbacks.training_pictures.{key}", int_at_least(1), "an integer >= 1")
            for key in ("num_real", "interpolation_rows", "annotated_per_digit", "gif_frame_ms")
        ),
        Rule(
            "callbacks.training_pictures.interpolation_steps",
            int_at_least(2),
            "an integer >= 2 (both endpoints are drawn)",
        ),
        Rule("callbacks.training_pictures.slerp", is_bool, "true or false"),
    )

    def __init__(
        self,
        seed: int = 1,
        classifier_ckpt: str | None = None,
        num_real: int = 64,
        interpolation_steps: int = 10,
        interpolation_rows: int = 4,
        slerp: bool = False,
        annotated_per_digit: int = 3,
        gif_frame_ms: int = 400,
    ) -> None:
        settings = {
            "callbacks.training_pictures.seed": seed,
            "callbacks.training_pictures.num_real": num_real,
            "callbacks.training_pictures.interpolation_steps": interpolation_steps,
            "callbacks.training_pictures.interpolation_rows": interpolation_rows,
            "callbacks.training_pictures.slerp": slerp,
            "callbacks.training_pictures.annotated_per_digit": annotated_per_digit,
            "callbacks.training_pictures.gif_frame_ms": gif_frame_ms,
        }
        refuse_broken(self.RULES, settings)
        self.seed = seed
        self.classifier_ckpt = classifier_ckpt
        self.num_real = num_real
        self.interpolation_steps = interpolation_steps
        self.interpolation_rows = interpolation_rows
        self.slerp = slerp
        self.annotated_per_digit = annotated_per_digit
        self.gif_frame_ms = gif_frame_ms

    @rank_zero_only
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        run_dir = Path(trainer.default_root_dir)
        folder = run_dir / "pictures"
        rng = torch.Generator().manual_seed(self.seed)
        generator = pl_module.sampling_generator()
        logger = tensorboard_logger(trainer)
        drawn = [
            self._final_samples(generator, rng, folder),
            self._real_vs_fake(trainer, generator, rng, folder),
            self._interpolation(generator, rng, folder),
            self._annotated_samples(generator, rng, folder, trainer.datamodule),
            self._progress_gif(run_dir / "samples", folder),
            self._loss_curves(logger, folder),
        ]
        written = [path for path in drawn if path is not None]
        if logger is not None:
            step = max(trainer.current_epoch - 1, 0)  # the last finished epoch, as SampleGrid
            for path in written:
                log_picture(logger, f"pictures/{picture_tag(path)}", path, step)
            logger.experiment.flush()
        names = ", ".join(path.name for path in written)
        rank_zero_info(f"Pictures of this run in {folder}: {names}")

    def _final_samples(self, generator: nn.Module, rng: torch.Generator, folder: Path) -> Path:
        """Seed 001's 100 random outputs, 10x10."""
        z = sample_latents(generator, 100, rng=rng)
        labels = balanced_labels(100, generator.num_classes) if generator.num_classes else None
        return pictures.save_grid(
            generate(generator, z, labels), folder / "final_samples_10x10.png", 10
        )

    def _real_vs_fake(
        self, trainer: pl.Trainer, generator: nn.Module, rng: torch.Generator, folder: Path
    ) -> Path | None:
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "real_images"):
            rank_zero_info("real_vs_fake.png skipped: the data module has no real_images()")
            return None
        real = datamodule.real_images("train", min(self.num_real, datamodule.num_train))
        z = sample_latents(generator, real.shape[0], rng=rng)
        labels = None
        if generator.num_classes:
            labels = balanced_labels(real.shape[0], generator.num_classes)
        fake = generate(generator, z, labels)
        return pictures.save_real_vs_fake(real.cpu(), fake, folder / "real_vs_fake.png")

    def _interpolation(self, generator: nn.Module, rng: torch.Generator, folder: Path) -> Path:
        if generator.num_classes:
            rows = generator.num_classes
            labels: Tensor | None = torch.arange(rows)
            start, end = sample_latents(generator, 2, rng=rng)[:, None].expand(-1, rows, -1)
        else:
            rows, labels = self.interpolation_rows, None
            start, end = sample_latents(generator, 2 * rows, rng=rng).view(2, rows, -1)
        images, _ = walk(generator, start, end, self.interpolation_steps, self.slerp, labels)
        return pictures.save_grid(images, folder / "interpolation.png", self.interpolation_steps)

    def _annotated_samples(
        self,
        generator: nn.Module,
        rng: torch.Generator,
        folder: Path,
        datamodule: pl.LightningDataModule | None,
    ) -> Path | None:
        """Seed 000's grid: target digit vs classifier answer, accuracy in the file name."""
        if not generator.num_classes:
            return None
        if not self.classifier_ckpt or not Path(self.classifier_ckpt).is_file():
            rank_zero_info(
                f"annotated samples skipped: no classifier at {self.classifier_ckpt} "
                "(train one with `python -m gan_lightning.train_classifier`)"
            )
            return None
        from gan_lightning.classifier import load_classifier

        # Building the network draws initial weights from the global RNG: fork it, so that
        # the pictures leave training's random stream where it was.
        with torch.random.fork_rng(devices=[]):
            classifier = load_classifier(self.classifier_ckpt)
        classifier.to(next(generator.parameters()).device)
        count = self.annotated_per_digit * generator.num_classes
        targets = balanced_labels(count, generator.num_classes)
        z = sample_latents(generator, count, rng=rng)
        images = generate(generator, z, targets)
        answers = predict_digits(classifier, images)
        accuracy = round(100 * pictures.agreement(targets, answers))
        # A resumed run draws it again: keep only the current accuracy's file.
        for stale in folder.glob("annotated_samples_acc=*.png"):
            stale.unlink()
        path = folder / f"annotated_samples_acc={accuracy}.png"
        names = getattr(datamodule, "class_names", None)  # data.class_names
        return pictures.save_annotated_grid(
            images, targets, answers, path, generator.num_classes, class_names=names
        )

    def _progress_gif(self, samples_dir: Path, folder: Path) -> Path | None:
        """Seed 001/003's animation of the fixed-noise grids, captioned with their epoch."""
        frames = sorted(samples_dir.glob("epoch_*.png"))
        if not frames:
            rank_zero_info(f"progress.gif skipped: no epoch grids in {samples_dir}")
            return None
        captions = [f"epoch {int(_EPOCH_FILE.fullmatch(p.name)[1])}" for p in frames]
        return pictures.save_gif(
            frames, folder / "progress.gif", captions, frame_ms=self.gif_frame_ms
        )

    def _loss_curves(self, logger: TensorBoardLogger | None, folder: Path) -> Path | None:
        if logger is None:
            rank_zero_info("loss_curves.png skipped: it is read from a TensorBoard logger's events")
            return None
        logger.experiment.flush()  # the last epoch's scalars may still sit in the writer's queue
        return pictures.save_loss_curves(logger.log_dir, folder / "loss_curves.png")


def picture_tag(path: Path) -> str:
    """TensorBoard tag of a picture file: its name without suffix and without ``_acc=NN``."""
    return path.stem.split("_acc=")[0]


def log_picture(logger: TensorBoardLogger, tag: str, path: Path, step: int) -> None:
    """Adds a PNG to the IMAGES tab, or a GIF as it is, so TensorBoard shows it animated.

    ``add_image`` would re-encode a GIF's first frame as PNG; the image plugin serves whatever
    encoded bytes the summary holds, so writing the GIF's bytes keeps the animation.
    """
    if path.suffix != ".gif":
        image = decode_image(str(path), mode=ImageReadMode.RGB)
        logger.experiment.add_image(tag, image, global_step=step)
        return
    with Image.open(path) as gif:
        width, height = gif.size
        colorspace = GREY if pictures.is_grey(gif) else RGB
    encoded = Summary.Image(
        height=height, width=width, colorspace=colorspace, encoded_image_string=path.read_bytes()
    )
    summary = Summary(value=[Summary.Value(tag=tag, image=encoded)])
    event_writer(logger.experiment).add_summary(summary, step)
