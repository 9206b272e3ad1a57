"""Improved precision and recall (Kynkäänniemi et al. 2019) as a torchmetrics ``Metric``.

torchmetrics (1.9) has no generative precision/recall, so this follows the paper's reference
implementation: each set of features spans a "manifold", the union of balls around its points
whose radius is the distance to the point's k-th nearest neighbour within its own set.

* precision: share of fake samples inside the real manifold (are the samples realistic?);
* recall: share of real samples inside the fake manifold (does G cover the data?).

The radii shrink as a set grows, so both numbers are only comparable between equal set sizes:
``compute`` uses the first ``n = min(n_real, n_fake)`` samples of each set, as the paper uses
equally many of both.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from gan_lightning.compat import reset_keeps_state


def knn_radii(features: Tensor, k: int, chunk_size: int) -> Tensor:
    """Distance of every point to its k-th nearest neighbour in the same set."""
    # k + 1: the nearest point to each one is itself, at distance 0.
    return torch.cat(
        [
            torch.cdist(chunk, features).kthvalue(k + 1, dim=1).values
            for chunk in features.split(chunk_size)
        ]
    )


class PrecisionRecall(Metric):
    """Improved precision and recall of fake vs real samples in a feature space.

    Args:
        feature: module mapping ``update``'s inputs to features (e.g. ``ClassifierFeatures``);
            ``None`` means ``update`` receives features already.
        k: neighbourhood size of the manifold estimate (the paper's default is 3).
        reset_real_features: like FID's flag; ``False`` keeps real features across ``reset``.
        chunk_size: rows of the distance matrix computed at once, bounding memory.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        feature: nn.Module | None = None,
        k: int = 3,
        reset_real_features: bool = True,
        chunk_size: int = 1024,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k={k} must be at least 1")
        self.feature = feature
        self.k = k
        self.reset_real_features = reset_real_features
        self.chunk_size = chunk_size
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, inputs: Tensor, real: bool) -> None:
        features = inputs if self.feature is None else self.feature(inputs)
        (self.real_features if real else self.fake_features).append(features.float())

    def compute(self) -> dict[str, Tensor]:
        real = dim_zero_cat(self.real_features)
        fake = dim_zero_cat(self.fake_features)
        n = min(real.shape[0], fake.shape[0])
        if n <= self.k:
            raise ValueError(
                f"precision/recall with k={self.k} needs more than {self.k} real and fake "
                f"samples each; got {real.shape[0]} real and {fake.shape[0]} fake"
            )
        real, fake = real[:n], fake[:n]
        real_radii = knn_radii(real, self.k, self.chunk_size)
        fake_radii = knn_radii(fake, self.k, self.chunk_size)
        # One pass over the fake-real distance matrix serves both directions.
        fake_inside = []
        real_inside = torch.zeros(n, dtype=torch.bool, device=real.device)
        for fake_chunk, radii_chunk in zip(
            fake.split(self.chunk_size), fake_radii.split(self.chunk_size), strict=True
        ):
            distances = torch.cdist(fake_chunk, real)
            fake_inside.append((distances <= real_radii).any(dim=1))
            real_inside |= (distances <= radii_chunk[:, None]).any(dim=0)
        return {
            "precision": torch.cat(fake_inside).float().mean(),
            "recall": real_inside.float().mean(),
        }

    def reset(self) -> None:
        if self.reset_real_features:
            super().reset()
            return
        with reset_keeps_state(self, "real_features"):
            super().reset()
