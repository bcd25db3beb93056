"""Losses for GAN training."""

from lit_gan.losses.feature_matching import discriminate_and_match, feature_matching_loss, intermediate_features
from lit_gan.losses.gan import GAN_LOSSES, GANLoss, gan_loss, gradient_penalty, register_gan_loss
from lit_gan.losses.terms import FeatureMatching, GeneratorLoss, GeneratorStep

__all__ = [
    "FeatureMatching",
    "GeneratorLoss",
    "GeneratorStep",
    "GAN_LOSSES",
    "GANLoss",
    "discriminate_and_match",
    "feature_matching_loss",
    "gan_loss",
    "gradient_penalty",
    "intermediate_features",
    "register_gan_loss",
]
