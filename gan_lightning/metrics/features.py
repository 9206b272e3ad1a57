"""Our classifier as the feature network of torchmetrics' generative metrics (no Inception).

torchmetrics' FID, KID and IS accept ``feature=<nn.Module>`` and pass images to it unchanged.
These wrappers make our classifier fit that slot:

* ``num_features`` is set, otherwise FID probes the module with a 3x299x299 dummy image;
* they stay in eval mode whatever ``.train()`` says, since a metric becomes their parent and
  dropout left on would make every FID a random number;
* inputs that are already features (``[B, feature_dim]``) pass through. The suite extracts
  features once per image and hands them to FID, KID and precision/recall alike, and cached
  real features enter those metrics through their public ``update``.
"""

from __future__ import annotations

from torch import Tensor, nn


class _FrozenClassifierView(nn.Module):
    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features: int = classifier.feature_dim

    def train(self, mode: bool = True) -> _FrozenClassifierView:
        return super().train(False)

    def features(self, inputs: Tensor) -> Tensor:
        if inputs.ndim == 2:
            if inputs.shape[1] != self.num_features:
                raise ValueError(
                    f"expected images [B, C, H, W] or features [B, {self.num_features}], "
                    f"got a tensor of shape {list(inputs.shape)}"
                )
            return inputs
        return self.classifier.features(inputs)


class ClassifierFeatures(_FrozenClassifierView):
    """The classifier's penultimate features: FID, KID and precision/recall compare these."""

    def forward(self, inputs: Tensor) -> Tensor:
        return self.features(inputs)


class ClassifierLogits(_FrozenClassifierView):
    """The classifier's logits, from images or from features: IS and coverage use these."""

    def forward(self, inputs: Tensor) -> Tensor:
        return self.classifier.head(self.features(inputs))
