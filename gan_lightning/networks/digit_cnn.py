"""The MNIST classifier that guides conditional generators and scores their samples."""

from __future__ import annotations

from torch import Tensor, nn

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class MNISTClassifier(nn.Module):
    """The PyTorch MNIST example CNN, with LeakyReLU instead of ReLU.

    Seed 000 found ReLU's dead units starve a generator of gradient when the classifier
    guides it. Inputs are GAN-range [-1, 1] images, 28x28 or 32x32, and preprocessing
    happens inside so the data module, the GAN and the evaluator all feed the same tensors.
    ``channels=3`` takes RGB images (``data.channels=3``) in its first convolution.
    """

    def __init__(
        self,
        feature_dim: int = 128,
        num_classes: int = 10,
        conv_dropout: float = 0.25,
        fc_dropout: float = 0.5,
        negative_slope: float = 0.01,
        channels: int = 1,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.channels = channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1),
            nn.LeakyReLU(negative_slope),
            nn.Conv2d(32, 64, 3, 1),
            nn.LeakyReLU(negative_slope),
            nn.MaxPool2d(2),
            nn.Dropout(conv_dropout),
            nn.Flatten(),
            nn.Linear(64 * 12 * 12, feature_dim),
            nn.LeakyReLU(negative_slope),
        )
        self.head = nn.Sequential(nn.Dropout(fc_dropout), nn.Linear(feature_dim, num_classes))

    @staticmethod
    def preprocess(x: Tensor) -> Tensor:
        """Crop 32x32 to 28x28 and map [-1, 1] to MNIST-normalised units.

        The data module pads 28 -> 32 with 2 px of background, so cropping 2 px per side
        recovers exactly the image the classifier was trained on.
        """
        size = x.shape[-1]
        if size == 32:
            x = x[..., 2:-2, 2:-2]
        elif size != 28:
            raise ValueError(f"MNISTClassifier expects 28x28 or 32x32 images, got {size}x{size}")
        return ((x + 1) / 2 - MNIST_MEAN) / MNIST_STD

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations [B, feature_dim], before dropout, for feature-space metrics."""
        return self.body(self.preprocess(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
