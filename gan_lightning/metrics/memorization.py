"""Memorization: do the samples copy training images?

A generator that reproduced its training set would score a near-perfect FID, precision and
recall, so those metrics cannot tell learning from copying. Following the nearest-neighbour
tests of the GAN-memorization literature (e.g. Meehan et al. 2020, Webster et al. 2019), each
sample's distance to its nearest training image is compared with the same distance for real
*test* images, which are novel by construction:

* ``copy_share_<space>``: share of samples closer to a training image than the closest 1% of
  test images are (so about 0.01 for novel data, 1.0 for copies);
* ``nn_ratio_<space>``: median nearest-training-image distance of the samples divided by that
  of the test images (about 1 for novel data, 0 for copies; well above 1 for blurry samples).

Both are computed in pixel space (exact copies) and in the classifier's feature space (near
copies: a training digit shifted by a pixel is far in pixels but close in features).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

SPACES = ("pixel", "feature")


def nearest_distances(queries: Tensor, references: Tensor, chunk_size: int) -> Tensor:
    """Euclidean distance of every query row to its nearest reference row."""
    return torch.cat(
        [torch.cdist(chunk, references).min(dim=1).values for chunk in queries.split(chunk_size)]
    )


def flat_pixels(images: Tensor) -> Tensor:
    """[B, 1, S, S] images in [-1, 1] to [B, 784] rows, 32 px ones cropped to MNIST's 28."""
    if images.shape[-1] == 32:
        images = images[..., 2:-2, 2:-2]
    return images.reshape(images.shape[0], -1).float()


class Memorization(Metric):
    """Nearest-training-image distances of samples against those of real test images.

    Call :meth:`set_reference` once with the training set and the test set (pixels as
    :func:`flat_pixels` rows, features from the same classifier); ``update`` then takes
    generated images.

    Args:
        feature: the classifier's feature module (``ClassifierFeatures``).
        quantile: the test distances' quantile below which a sample counts as a copy.
        chunk_size: query rows per distance matrix, bounding memory.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        feature: nn.Module,
        quantile: float = 0.01,
        chunk_size: int = 512,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 < quantile < 1:
            raise ValueError(f"quantile={quantile} must be in (0, 1)")
        self.feature = feature
        self.quantile = quantile
        self.chunk_size = chunk_size
        self.add_state("fake_pixels", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        # Buffers move with .to(device); non-persistent keeps them out of every state_dict.
        for space in SPACES:
            self.register_buffer(f"train_{space}", None, persistent=False)
            self.register_buffer(f"test_distances_{space}", None, persistent=False)

    @property
    def has_reference(self) -> bool:
        return self.train_pixel is not None

    @torch.no_grad()
    def set_reference(
        self,
        train_pixels: Tensor,
        train_features: Tensor,
        test_pixels: Tensor,
        test_features: Tensor,
    ) -> None:
        """The training set to search, and the novel test set whose distances calibrate it."""
        sets = {"pixel": (train_pixels, test_pixels), "feature": (train_features, test_features)}
        for space, (train, test) in sets.items():
            train = train.float()
            setattr(self, f"train_{space}", train)
            distances = nearest_distances(test.float().to(train.device), train, self.chunk_size)
            setattr(self, f"test_distances_{space}", distances)

    def update(self, images: Tensor, features: Tensor | None = None) -> None:
        """Add generated images [B, 1, S, S] in [-1, 1] (and their features, if computed)."""
        self.fake_pixels.append(flat_pixels(images))
        self.fake_features.append((self.feature(images) if features is None else features).float())

    @torch.no_grad()
    def compute(self) -> dict[str, Tensor]:
        if not self.has_reference:
            raise RuntimeError("Memorization.set_reference() must run before compute()")
        fakes = {
            "pixel": dim_zero_cat(self.fake_pixels),
            "feature": dim_zero_cat(self.fake_features),
        }
        values: dict[str, Tensor] = {}
        for space in SPACES:
            train = getattr(self, f"train_{space}")
            fake = nearest_distances(fakes[space].to(train.device), train, self.chunk_size)
            test = getattr(self, f"test_distances_{space}")
            threshold = torch.quantile(test, self.quantile)
            values[f"copy_share_{space}"] = (fake <= threshold).float().mean()
            values[f"nn_ratio_{space}"] = fake.median() / test.median().clamp_min(1e-12)
        return values
