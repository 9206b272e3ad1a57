"""Real-image features, computed once per classifier and image set and kept on disk.

Extracting features of the 10,000 test images costs far more on a CPU than a whole metrics
pass over a few thousand samples, and they never change for a given classifier. The cache key
hashes the classifier file and the image bytes themselves, so retraining the classifier, another
dataset or another data root can never be served stale features.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from gan_lightning.data.datamodule import to_unit_range
from gan_lightning.metrics.features import ClassifierFeatures


def cache_path(classifier_ckpt: str | Path, images: Tensor, *, dataset: str, split: str) -> Path:
    """``<classifier folder>/cache/<dataset>_<split>_<hash>.pt``."""
    classifier_ckpt = Path(classifier_ckpt)
    digest = hashlib.sha256(classifier_ckpt.read_bytes())
    digest.update(images.cpu().contiguous().numpy().tobytes())
    return classifier_ckpt.parent / "cache" / f"{dataset}_{split}_{digest.hexdigest()[:16]}.pt"


def real_features(
    features: ClassifierFeatures,
    classifier_ckpt: str | Path,
    images: Tensor,
    *,
    dataset: str,
    split: str,
    batch_size: int,
) -> Tensor:
    """Features of uint8 ``images`` [N, 1, S, S] by the classifier saved at ``classifier_ckpt``."""
    path = cache_path(classifier_ckpt, images, dataset=dataset, split=split)
    device = next(features.parameters()).device
    if path.is_file():
        cached = torch.load(path, map_location=device, weights_only=True)
        if isinstance(cached, Tensor) and cached.shape == (images.shape[0], features.num_features):
            return cached
    # Converted a batch at a time: all 10,000 as floats would be 4x the uint8 set in memory.
    with torch.no_grad():
        computed = torch.cat(
            [features(to_unit_range(batch.to(device))) for batch in images.split(batch_size)]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial.{os.getpid()}")
    torch.save(computed.cpu(), partial)
    os.replace(partial, path)  # atomic: parallel sweep jobs may write the same entry
    return computed
