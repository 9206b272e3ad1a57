"""DiffAugment (Zhao et al. 2020) for single-channel images in [-1, 1].

Differentiable augmentations applied to *both* real and fake images on their way into D, so D
cannot memorize a small training set (6,309 images here) while G still gets gradients through
the augmentation. One pure function per policy, looked up by name from the config: adding a
policy is one function and one dictionary entry.

Out-of-image and cut-out pixels are filled with -1 (the MNIST background after scaling) rather
than DiffAugment's 0, which would paint grey squares no real digit image contains.

:class:`AdaptiveTranslation` is StyleGAN2-ADA's alternative: one augmentation applied with a
probability that a controller raises while D overfits, so a D that does not overfit sees the
images unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BACKGROUND = -1.0


def translation(images: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y, filling with background."""
    _, _, height, width = images.shape
    return shift(images, int(height * ratio + 0.5), int(width * ratio + 0.5))


def shift(images: Tensor, pad_y: int, pad_x: int) -> Tensor:
    """Shift each image by a whole number of pixels, up to ``pad_y`` / ``pad_x``, drawn per
    image; pixels shifted in are background. Differentiable in the images (a gather)."""
    batch, _, height, width = images.shape
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


class AdaptiveTranslation(nn.Module):
    """Shifts each D input by up to ``max_shift`` pixels with probability ``p``, and adjusts
    ``p`` from D's verdicts on reals (StyleGAN2-ADA, Karras et al. 2020, section 3).

    The overfitting heuristic r_t = E[sign(D(real))] (``GANLoss.realness``) is summed on the
    device as steps go, and every ``interval`` D steps ``p`` moves by
    ``interval * batch / (kimg * 1000)``
    towards more augmentation when r_t exceeds ``target`` and towards less when it does not:
    no value is read back to the host. ``p`` and the partial sums are buffers, so a resumed
    run continues with the same probability.
    """

    def __init__(self, target: float, kimg: float, interval: int, max_shift: int) -> None:
        super().__init__()
        self.target, self.kimg, self.interval, self.max_shift = target, kimg, interval, max_shift
        self.register_buffer("p", torch.zeros(()))
        self.register_buffer("sign_sum", torch.zeros(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("r_t", torch.zeros(()))

    def forward(self, images: Tensor) -> Tensor:
        chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < self.p
        shifted = shift(images, self.max_shift, self.max_shift)
        return torch.where(chosen, shifted, images)

    @torch.no_grad()
    def observe(self, real_signs: Tensor, d_step: int) -> None:
        """Count D step ``d_step``'s signs on reals; adjust ``p`` every ``interval`` steps.

        Timed by the module's D-step counter, which travels in the checkpoint, rather than a
        counter of its own that would cost a host read per step.
        """
        self.sign_sum += real_signs.float().sum()
        self.count += real_signs.numel()
        if (d_step + 1) % self.interval:
            return
        self.r_t.copy_(self.sign_sum / self.count)
        step = self.count / (self.kimg * 1000.0)
        self.p.add_(torch.sign(self.r_t - self.target) * step).clamp_(0.0, 1.0)
        self.sign_sum.zero_()
        self.count.zero_()


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
