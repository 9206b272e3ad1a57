"""Whole-tensor data modules: MNIST's IDX files, folders of images, and ``.npz`` files.

Entry points: ``datamodule.MNISTDataModule`` (``data=mnist``), ``folder.ImageFolderDataModule``
(``data=folder``) and ``npz.NpzDataModule`` (``data=npz``), all built on
``datamodule.WholeTensorDataModule``, which the metrics callback and the classifier accept too.
Each class checks its own keys with a ``RULES`` table.
"""
