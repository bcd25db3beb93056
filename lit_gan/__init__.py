"""lit_gan: GAN-based image style transfer as a PyTorch Lightning experiment platform."""

__version__ = "0.1.0"
