"""Mode coverage: how the classifier spreads generated samples over the classes."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class ClassCoverage(Metric):
    """Share of samples per predicted class, its KL divergence from uniform, and the smallest share.

    Mode collapse shows here before it shows in FID: a generator that forgets a digit drives
    ``min_class_fraction`` to 0, and the KL grows towards ``log(num_classes)`` (2.30 for ten
    digits) as samples pile onto fewer classes. Assumes balanced classes, as MNIST has.

    ``update`` takes logits (or probabilities) ``[B, num_classes]``.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, num_classes: int = 10, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes} must be at least 2")
        self.num_classes = num_classes
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor) -> None:
        predicted = logits.argmax(dim=1)
        self.counts += torch.bincount(predicted, minlength=self.num_classes)

    def compute(self) -> dict[str, Tensor]:
        fractions = self.counts.double() / self.counts.sum().clamp(min=1)
        # KL(p || uniform) = sum p log(p K); xlogy makes empty classes contribute 0, not NaN.
        kl = torch.special.xlogy(fractions, fractions * self.num_classes).sum()
        return {
            "class_fractions": fractions,
            "coverage_kl": kl,
            "min_class_fraction": fractions.min(),
        }
