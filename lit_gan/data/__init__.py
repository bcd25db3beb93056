"""Data: image sources, layouts, checks, transforms, the standard downloads and the `StyleDataModule`."""

from lit_gan.data.checks import ImageCheckWarning, ImageReport
from lit_gan.data.datamodule import DATASET_NAMES, StyleDataModule, valid_dataset_names
from lit_gan.data.images import ImageReadError

__all__ = [
    "DATASET_NAMES",
    "ImageCheckWarning",
    "ImageReadError",
    "ImageReport",
    "StyleDataModule",
    "valid_dataset_names",
]
