"""DiffAugment (Zhao et al. 2020) for single-channel images in [-1, 1].

Differentiable augmentations applied to *both* real and fake images on their way into D, so D
cannot memorize a small training set (6,309 images here) while G still gets gradients through
the augmentation. One pure function per policy, looked up by name from the config: adding a
policy is one function and one dictionary entry.

Out-of-image and cut-out pixels are filled with -1 (the MNIST background after scaling) rather
than DiffAugment's 0, which would paint grey squares no real digit image contains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

BACKGROUND = -1.0


def translation(images: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with background."""
    batch, _, height, width = images.shape
    pad_y, pad_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    shift_y = torch.randint(-pad_y, pad_y + 1, (batch, 1, 1), device=device)
    shift_x = torch.randint(-pad_x, pad_x + 1, (batch, 1, 1), device=device)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    padded = F.pad(images, (pad_x, pad_x, pad_y, pad_y), value=BACKGROUND)
    rows = grid_y + pad_y - shift_y
    cols = grid_x + pad_x - shift_x
    batch_index = torch.arange(batch, device=device).view(batch, 1, 1)
    # Advanced indexing moves the channel axis last: [B, H, W, C] -> [B, C, H, W].
    return padded.permute(0, 2, 3, 1)[batch_index, rows, cols].permute(0, 3, 1, 2)


def cutout(images: Tensor, ratio: float = 0.5) -> Tensor:
    """Blank one random square of side ``ratio`` x image size per image."""
    batch, _, height, width = images.shape
    device = images.device
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height - size_y + 1, (batch, 1, 1), device=device)
    left = torch.randint(0, width - size_x + 1, (batch, 1, 1), device=device)
    grid_y, grid_x = torch.meshgrid(
        torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"
    )
    inside = (grid_y >= top) & (grid_y < top + size_y) & (grid_x >= left) & (grid_x < left + size_x)
    return images.masked_fill(inside.unsqueeze(1), BACKGROUND)


def brightness(images: Tensor, strength: float = 0.5) -> Tensor:
    """Add a random offset per image (DiffAugment's colour policy, reduced to grey levels)."""
    offset = (torch.rand(images.shape[0], 1, 1, 1, device=images.device) - 0.5) * strength
    return images + offset


POLICIES: dict[str, Callable[[Tensor], Tensor]] = {
    "translation": translation,
    "cutout": cutout,
    "brightness": brightness,
}


def check_policies(policies: Sequence[str]) -> None:
    unknown = [name for name in policies if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"tricks.diffaugment={list(policies)}: unknown policy {unknown}; "
            f"choose from {sorted(POLICIES)}"
        )


def diff_augment(images: Tensor, policies: Sequence[str]) -> Tensor:
    for name in policies:
        images = POLICIES[name](images)
    return images
