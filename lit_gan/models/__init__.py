"""LightningModules: training logic only (networks, losses, data and side effects live elsewhere)."""

from lit_gan.models.cyclegan import CycleGAN

__all__ = ["CycleGAN"]
