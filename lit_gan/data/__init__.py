"""Data: image sources, layouts, checks, transforms, the standard downloads and the `StyleDataModule`."""

from lit_gan.data.checks import ImageCheckWarning, ImageReport
from lit_gan.data.datamodule import StyleDataModule
from lit_gan.data.images import ImageReadError
from lit_gan.data.layouts import DATASET_NAMES, valid_dataset_names

__all__ = [
    "DATASET_NAMES",
    "ImageCheckWarning",
    "ImageReadError",
    "ImageReport",
    "StyleDataModule",
    "valid_dataset_names",
]
