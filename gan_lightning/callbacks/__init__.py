"""Lightning callbacks for everything around the training step: pictures, layouts, guards."""

from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.callbacks.tensorboard import TensorBoardLayout

__all__ = ["SampleGrid", "TensorBoardLayout"]
