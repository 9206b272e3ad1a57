"""The test split of a source that has none: a seeded share of the images, class by class.

The metrics compare samples with the test images, so a class missing from them, or a test set
drawn anew each run, would make FID and class coverage wander for no reason. The share is taken
from every class alike (at least one image each, never all), with its own generator seeded by
``data.split_seed``: the same files give the same split on every run and machine.
"""

from __future__ import annotations

import torch

from gan_lightning.data.datamodule import NO_LABEL
from gan_lightning.errors import DataError


def hold_out(
    labels: torch.Tensor, fraction: float, seed: int, source: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices into ``labels`` [N], each sorted, ``fraction`` of each class in test.

    Images without labels (``NO_LABEL``) form one group. Every group needs two images or more,
    one to train on and one to test with; ``source`` names the data in the error otherwise.
    """
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for group in labels.unique(sorted=True).tolist():
        members = torch.nonzero(labels == group).flatten()
        count = members.shape[0]
        if count < 2:
            which = "image" if group == NO_LABEL else f"image of class {group}"
            raise DataError(
                f"{source} has a single {which}: holding out test images (data.test_fraction) "
                "needs at least 2 per class, one to train on and one to test with. Add images."
            )
        num_test = min(count - 1, max(1, round(count * fraction)))
        order = members[torch.randperm(count, generator=generator)]
        test.append(order[:num_test])
        train.append(order[num_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
