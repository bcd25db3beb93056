"""Hyperparameter sweeps in W&B's format: checking sweep files (and, next, running them offline)."""

from lit_gan.sweep.config import SweepConfigError, load_sweep

__all__ = ["SweepConfigError", "load_sweep"]
