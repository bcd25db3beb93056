"""LightningModules: training logic only (networks, losses, data and side effects live elsewhere)."""

from lit_gan.models.cyclegan import CycleGAN
from lit_gan.models.dcgan import DCGAN
from lit_gan.models.pix2pix import Pix2Pix

__all__ = ["CycleGAN", "DCGAN", "Pix2Pix"]
