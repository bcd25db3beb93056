"""Data: image sources, datasets, transforms and the `StyleDataModule`."""

from lit_gan.data.datamodule import DATASET_NAMES, StyleDataModule

__all__ = ["DATASET_NAMES", "StyleDataModule"]
