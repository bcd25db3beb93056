"""Callbacks: side effects of training (sample grids, metrics, media)."""

from lit_gan.callbacks.samples import SampleGridCallback

__all__ = ["SampleGridCallback"]
