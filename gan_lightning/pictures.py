"""The pictures people judge a GAN by: grids, annotated grids, progress GIFs, walks, loss curves.

Each function takes tensors or paths and writes one file, so it can be tested alone and the
training callback and the ``sample`` command draw the same pictures. Images are GAN-range
tensors ``[B, C, S, S]`` in [-1, 1], grayscale (C = 1) or RGB (C = 3); every picture keeps the
colour of an RGB generator.

Grids come from ``torchvision.utils``; figures with text use matplotlib's object-oriented API
(``Figure`` renders through the Agg canvas when saved to PNG), which never touches pyplot's
global state: no backend switch leaks into a notebook that imports this module, and no figure
is left open. GIFs are written by Pillow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor
from torchvision.utils import make_grid, save_image

MATCH_COLOR = "tab:green"
MISMATCH_COLOR = "tab:red"
#: (panel title, metric names) of the loss-curve figure; the names are ``self.log`` keys.
#: A run logs D's outputs either as probabilities or, for hinge and WGAN, as raw scores
#: (``GANLoss.discriminator_outputs``); the panel draws whichever pair is there.
PROBABILITIES = ("D(x)", "D(G(z))")
CURVE_PANELS = (
    ("losses", ("loss/d", "loss/g")),
    ("discriminator outputs", (*PROBABILITIES, "D_score(x)", "D_score(G(z))")),
)


def _prepare(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def grid_image(images: Tensor, nrow: int = 8) -> Tensor:
    """[-1, 1] images tiled into one [3, H, W] image in [0, 1], separated by white 2 px gaps."""
    return make_grid(
        images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1
    )


def save_grid(images: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """One PNG of ``images`` in rows of ``nrow`` (the same look as the per-epoch grids)."""
    path = _prepare(path)
    save_image(grid_image(images, nrow), path)
    return path


def agreement(targets: Tensor, predictions: Tensor) -> float:
    """Share of images whose classifier answer equals the digit the generator was asked for."""
    return (targets.cpu() == predictions.cpu()).float().mean().item()


def annotation(target: int, answer: int, class_names: Sequence[str] | None = None) -> str:
    """``T:<target> C:<classifier's answer>``, by name when the data names its classes.

    Digits fit one line; longer names (Fashion-MNIST's ``data.class_names``) get one each.
    """
    if class_names is None:
        return f"T:{target} C:{answer}"
    target_name, answer_name = class_names[target], class_names[answer]
    separator = " " if len(target_name) + len(answer_name) <= 4 else "\n"
    return f"T:{target_name}{separator}C:{answer_name}"


def save_annotated_grid(
    images: Tensor,
    targets: Tensor,
    predictions: Tensor,
    path: str | Path,
    ncols: int = 10,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Seed 000's picture: each sample titled ``T:<target> C:<classifier's answer>``.

    Titles are green when the classifier reads the class the generator was asked for and red
    otherwise; the overall agreement is the figure's title.
    """
    count = images.shape[0]
    if not count == targets.shape[0] == predictions.shape[0]:
        raise ValueError(
            f"{count} images need as many targets and predictions, "
            f"got {targets.shape[0]} and {predictions.shape[0]}"
        )
    rows = -(-count // ncols)
    figure = Figure(figsize=(0.95 * ncols, 1.1 * rows + 0.45), layout="constrained")
    axes = figure.subplots(rows, ncols, squeeze=False)
    pixels = images.detach().float().cpu()
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= count:
            continue
        target, answer = int(targets[index]), int(predictions[index])
        show_image(ax, pixels[index])
        color = MATCH_COLOR if target == answer else MISMATCH_COLOR
        title = annotation(target, answer, class_names)
        size = 10 if "\n" not in title else 7
        ax.set_title(title, color=color, fontsize=size, fontweight="bold")
    correct = int((targets.cpu() == predictions.cpu()).sum())
    figure.suptitle(
        f"target class (T) vs classifier (C): {correct}/{count} agree "
        f"({agreement(targets, predictions):.0%})"
    )
    path = _prepare(path)
    figure.savefig(path, dpi=100)
    return path


def show_image(ax: Axes, image: Tensor) -> None:
    """A [-1, 1] image [C, S, S] on ``ax``: grey through the gray colormap, RGB as it is.

    Given as numpy arrays: matplotlib converts with ``copy=``, which a tensor's ``__array__``
    does not take (numpy 2 deprecates that fallback).
    """
    image = image.detach().cpu()
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        return
    # imshow takes RGB floats in [0, 1] as they are, ignoring vmin/vmax.
    rgb = image.add(1).div(2).clamp(0, 1).permute(1, 2, 0)
    ax.imshow(rgb.numpy(), interpolation="nearest")


def is_grey(image: Image.Image) -> bool:
    """Whether red, green and blue are equal in every pixel, as in a 1-channel generator's grid."""
    if image.mode in ("1", "L"):
        return True
    red, green, blue = image.convert("RGB").split()
    return red.tobytes() == green.tobytes() == blue.tobytes()


def _with_caption(frame: Image.Image, caption: str, height: int = 14) -> Image.Image:
    """The frame below a white band holding ``caption`` (Pillow's built-in bitmap font)."""
    canvas = Image.new(frame.mode, (frame.width, frame.height + height), color="white")
    canvas.paste(frame, (0, height))
    ImageDraw.Draw(canvas).text((3, 1), caption, fill="black")
    return canvas


def save_gif(
    frames: Sequence[str | Path],
    path: str | Path,
    captions: Sequence[str] | None = None,
    frame_ms: int = 400,
    last_frame_ms: int = 2000,
) -> Path:
    """An endlessly looping GIF of same-size PNGs, e.g. the fixed-noise grid of every epoch.

    The last frame is held longer so a viewer sees where training ended before it loops.
    Grey grids (a 1-channel generator's) are stored as 8-bit gray: exact, with no palette
    dithering. Colour grids get each frame's own 256-colour median-cut palette (a GIF holds no
    more), undithered so that flat areas stay flat instead of shimmering from frame to frame.
    """
    if not frames:
        raise ValueError(f"no frames for {path}: the GIF needs at least one PNG")
    if captions is not None and len(captions) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(captions)} captions")
    images = []
    for frame in frames:
        with Image.open(frame) as image:
            images.append(image.convert("RGB"))
    mode = "L" if all(is_grey(image) for image in images) else "RGB"
    images = [image.convert(mode) for image in images]
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise ValueError(f"GIF frames must share one size, got {sorted(sizes)} from {frames}")
    if captions is not None:
        images = [_with_caption(image, text) for image, text in zip(images, captions, strict=True)]
    if mode == "RGB":
        images = [
            image.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            for image in images
        ]
    durations = [frame_ms] * (len(images) - 1) + [last_frame_ms]
    path = _prepare(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def lerp(start: Tensor, end: Tensor, weights: Tensor) -> Tensor:
    """Points on the straight lines from ``start`` [R, D] to ``end`` [R, D]: [R, T, D]."""
    w = weights.to(start.dtype)[None, :, None]
    return start[:, None] + (end - start)[:, None] * w


def slerp(start: Tensor, end: Tensor, weights: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985), [R, T, D], as White (2016) advises for GANs.

    Gaussian latents of high dimension concentrate near a sphere of radius sqrt(D); the
    midpoint of a straight line lies well inside it, where G has rarely been trained, while
    the great-circle path keeps a typical norm. Nearly parallel endpoints fall back to lerp.
    """
    w = weights.to(start.dtype)[None, :, None]
    cos = torch.nn.functional.cosine_similarity(start, end, dim=-1).clamp(-1, 1)
    omega = torch.arccos(cos)[:, None, None]
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    curved = (
        torch.sin((1 - w) * omega) / safe_sin * start[:, None]
        + torch.sin(w * omega) / safe_sin * end[:, None]
    )
    return torch.where(parallel, lerp(start, end, weights), curved)


def interpolate(start: Tensor, end: Tensor, steps: int, spherical: bool = False) -> Tensor:
    """``steps`` latents from ``start`` to ``end`` (both included) per row: [R, steps, D]."""
    if steps < 2:
        raise ValueError(f"an interpolation needs steps >= 2 (both endpoints), got {steps}")
    weights = torch.linspace(0, 1, steps)
    return (slerp if spherical else lerp)(start, end, weights)


def save_real_vs_fake(
    real: Tensor, fake: Tensor, path: str | Path, nrow: int = 8, scale: int = 2
) -> Path:
    """Seed 003's comparison: a grid of training images beside a grid of generated ones."""
    grids = [grid_image(images, nrow).permute(1, 2, 0).numpy() for images in (real, fake)]
    height = max(grid.shape[0] for grid in grids)
    width = sum(grid.shape[1] for grid in grids)
    dpi = 100
    # Whole screen pixels per image pixel (``scale``) keep the digits' strokes crisp.
    figure = Figure(figsize=(scale * width / dpi + 0.4, scale * height / dpi + 0.5), dpi=dpi)
    axes = figure.subplots(1, 2)
    titles = (f"real (training data, {real.shape[0]})", f"generated ({fake.shape[0]})")
    for ax, grid, title in zip(axes, grids, titles, strict=True):
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92, wspace=0.04)
    path = _prepare(path)
    figure.savefig(path, dpi=dpi)
    return path


def read_scalars(event_dir: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar series of a TensorBoard event folder: ``tag -> (steps, values)``."""
    accumulator = EventAccumulator(str(event_dir), size_guidance={"scalars": 0})  # 0: keep all
    # Its directory watcher reports "No path found after <file>" at INFO when it reaches the
    # end of the newest file: the normal end of reading, not news for the user.
    tensorboard_log = logging.getLogger("tensorboard")
    level = tensorboard_log.level
    tensorboard_log.setLevel(logging.WARNING)
    try:
        accumulator.Reload()
    finally:
        tensorboard_log.setLevel(level)
    series = {}
    for tag in accumulator.Tags()["scalars"]:
        events = accumulator.Scalars(tag)
        series[tag] = ([event.step for event in events], [event.value for event in events])
    return series


def save_loss_curves(event_dir: str | Path, path: str | Path) -> Path:
    """D and G losses and D's outputs against batches, read back from the run's event files.

    Reading what ``self.log`` wrote (rather than keeping a second list of losses) means the
    picture shows exactly the curves TensorBoard shows.
    """
    scalars = read_scalars(event_dir)
    names = [name for _, panel in CURVE_PANELS for name in panel]
    if not any(f"{name}{suffix}" in scalars for name in names for suffix in ("_step", "_epoch")):
        raise ValueError(
            f"{event_dir} holds none of the scalars {names} (found: {sorted(scalars)}); "
            "pass the run's tensorboard/ folder"
        )
    path = _prepare(path)
    loss_curves(scalars).savefig(path, dpi=100)
    return path


def loss_curves(scalars: dict[str, tuple[list[int], list[float]]]) -> Figure:
    """One panel per entry of :data:`CURVE_PANELS`: each metric's per-batch series (thin) and
    its per-epoch mean (thick, at the epoch's last batch), where logged."""
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    axes = figure.subplots(1, len(CURVE_PANELS))
    for ax, (title, panel) in zip(axes, CURVE_PANELS, strict=True):
        for index, name in enumerate(panel):
            color = f"C{index}"
            if f"{name}_step" in scalars:
                steps, values = scalars[f"{name}_step"]
                ax.plot(steps, values, color=color, alpha=0.35, linewidth=0.8, label=name)
            if f"{name}_epoch" in scalars:
                steps, values = scalars[f"{name}_epoch"]
                label = f"{name} (epoch mean)"
                ax.plot(steps, values, color=color, marker="o", linewidth=2, label=label)
        ax.set_title(title)
        ax.set_xlabel("batch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best")
    # Probabilities on their whole range; a critic's scores are unbounded.
    if any(line.get_label().startswith(PROBABILITIES) for line in axes[1].lines):
        axes[1].set_ylim(-0.02, 1.02)
    return figure
