"""Losses for GAN training."""

from lit_gan.losses.feature_matching import discriminate_and_match, feature_matching_loss, intermediate_features
from lit_gan.losses.gan import GAN_LOSSES, GANLoss, gan_loss, gradient_penalty, register_gan_loss
from lit_gan.losses.perceptual import PerceptualLoss, StyleLoss, TotalVariation, gram_matrix
from lit_gan.losses.terms import FeatureMatching, GeneratorLoss, GeneratorStep
from lit_gan.losses.vgg import VGGFeatures, VGGWeightsError

__all__ = [
    "FeatureMatching",
    "GeneratorLoss",
    "GeneratorStep",
    "PerceptualLoss",
    "StyleLoss",
    "TotalVariation",
    "VGGFeatures",
    "VGGWeightsError",
    "GAN_LOSSES",
    "GANLoss",
    "discriminate_and_match",
    "feature_matching_loss",
    "gan_loss",
    "gradient_penalty",
    "gram_matrix",
    "intermediate_features",
    "register_gan_loss",
]
