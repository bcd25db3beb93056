"""Callbacks: side effects of training (sample grids, metrics, media, checkpoints)."""

from lit_gan.callbacks.checkpoint import BestCheckpoint, LatestCheckpoint
from lit_gan.callbacks.divergence import DivergenceGuard, TrainingDiverged
from lit_gan.callbacks.metrics import MetricsCallback, MetricsWarning
from lit_gan.callbacks.predictions import PredictionWriter
from lit_gan.callbacks.progress import TimedProgressBar
from lit_gan.callbacks.samples import SampleGridCallback
from lit_gan.callbacks.speed import SpeedOptions
from lit_gan.callbacks.translations import TranslationTableCallback

__all__ = [
    "BestCheckpoint",
    "LatestCheckpoint",
    "DivergenceGuard",
    "TrainingDiverged",
    "MetricsCallback",
    "MetricsWarning",
    "PredictionWriter",
    "SampleGridCallback",
    "SpeedOptions",
    "TimedProgressBar",
    "TranslationTableCallback",
]
