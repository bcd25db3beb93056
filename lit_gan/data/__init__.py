"""Data: image sources, layouts, checks, transforms, the standard downloads and the `StyleDataModule`."""

from lit_gan.data.checks import ImageCheckWarning, ImageReport
from lit_gan.data.datamodule import StyleDataModule
from lit_gan.data.layouts import DATASET_NAMES, valid_dataset_names
from lit_gan.data.options import PredictOptions, SingleImageOptions, SyntheticOptions
from lit_gan.image_io import ImageReadError

__all__ = [
    "DATASET_NAMES",
    "ImageCheckWarning",
    "ImageReadError",
    "ImageReport",
    "PredictOptions",
    "SingleImageOptions",
    "StyleDataModule",
    "SyntheticOptions",
    "valid_dataset_names",
]
