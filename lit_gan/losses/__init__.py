"""Losses for GAN training."""

from lit_gan.losses.gan import GAN_LOSSES, GANLoss, gan_loss, register_gan_loss

__all__ = ["GAN_LOSSES", "GANLoss", "gan_loss", "register_gan_loss"]
