"""Building blocks shared by the architectures, so a new one is one file plus one YAML."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_lightning.networks.latents import check_latent_prior


class Reshape(nn.Module):
    """``view`` as a module, so flat and spatial stages can share one ``nn.Sequential``."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def block(
    layer: nn.Linear | nn.Conv2d | nn.ConvTranspose2d,
    activation: nn.Module,
    *,
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> list[nn.Module]:
    """Layer, optional BatchNorm, activation, optional Dropout: the order every seed uses.

    The BatchNorm flavour and width are read off ``layer`` so callers cannot mismatch them.
    A flat list (not a nested ``Sequential``) keeps state-dict keys simple when splatted.
    """
    parts: list[nn.Module] = [layer]
    if batch_norm:
        if isinstance(layer, nn.Linear):
            parts.append(nn.BatchNorm1d(layer.out_features))
        else:
            parts.append(nn.BatchNorm2d(layer.out_channels))
    parts.append(activation)
    if dropout:
        parts.append(nn.Dropout(dropout))
    return parts


class MinibatchStdDev(nn.Module):
    """ProGAN's minibatch standard deviation: one extra feature map holding the average std
    of the features across groups of ``group_size`` samples.

    A generator that draws the same digit for every z gives a batch whose std is near zero,
    which D can now see directly: it counters mode collapse (Karras et al. 2018, section 3).
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        # The largest group size up to group_size that divides the batch (ProGAN needs one).
        group = next(g for g in range(min(self.group_size, batch), 0, -1) if batch % g == 0)
        if group < 2:
            # A std needs two samples; the map is zero so shapes stay fixed (e.g. batch 1).
            return torch.cat([x, x.new_zeros(batch, 1, height, width)], dim=1)
        y = x.view(group, -1, channels, height, width)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()
        y = y.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).repeat(group, 1, height, width)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def require_labels(labels: Tensor | None, owner: str) -> Tensor:
    """Fail loudly rather than let a conditional model silently run without its condition."""
    if labels is None:
        raise ValueError(f"{owner} is conditional and needs `labels` (a [B] tensor of class ids)")
    return labels


class Generator(nn.Module):
    """Unconditional generator around ``net``: z [B, latent_dim] -> images in [-1, 1].

    ``labels`` is accepted and ignored so training code calls every generator the same way.
    """

    num_classes = 0
    channels = 1  # grayscale; the data module refuses data of another kind before training

    def __init__(
        self, latent_dim: int, image_size: int, net: nn.Module, latent_prior: str = "gaussian"
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.latent_prior = check_latent_prior(latent_prior)
        self.net = net

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """Unconditional discriminator around ``net``: images -> logits of shape [B].

    Reshaping to exactly ``[B]`` (not ``flatten``) makes a head that emits more than one
    value per image fail here instead of quietly broadcasting inside the loss.
    """

    num_classes = 0

    def __init__(self, image_size: int, net: nn.Module) -> None:
        super().__init__()
        self.image_size = image_size
        self.net = net

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(images).reshape(images.shape[0])
