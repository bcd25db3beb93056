"""Extra generator loss terms, chosen in the config: `model.generator_losses` is a list of `GeneratorLoss`es.

    model:
      init_args:
        generator_losses:
          - class_path: lit_gan.losses.FeatureMatching
            init_args: {weight: 10.0}

Each term sees one generator step (`GeneratorStep`: the generated images, the real images they are compared with,
the discriminator) and returns an unweighted scalar; the model adds `weight` times it to the generator's loss and
logs it as `train/<name>` (with the direction's suffix in models with several generators, e.g. `_A`).
"""

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from lit_gan.losses.feature_matching import feature_matching_loss, intermediate_features


@dataclass
class GeneratorStep:
    """One generator's step, as the loss terms see it."""

    fake: Tensor
    """The generated images (B, C, H, W), with gradients."""
    real: Tensor
    """Real images of the target domain: the fakes' targets when `paired`, else a batch of the same domain."""
    source: Tensor | None
    """The images translated (B, C, H, W); None when generating from noise."""
    discriminator: nn.Module
    """The discriminator that judges the fakes."""
    d_fake: Tensor
    """What the discriminator saw for the fakes (the fakes, or (source, fake) pairs for a conditional one)."""
    d_real: Tensor
    """What the discriminator sees for real images, in the same form."""
    paired: bool
    """Whether fake i translates the image whose target is real i (pix2pix)."""
    d_features: list[Tensor] = field(default_factory=list)
    """The discriminator's intermediate activations on `d_fake` (collected when a term asks for them)."""


class GeneratorLoss(nn.Module):
    """A weighted generator loss term. Subclasses implement `forward(step) -> scalar`.

    Args:
        weight: factor of the term in the generator's loss (0 disables it).
    """

    name: str = "loss"
    """Logged as `train/<name>`."""
    needs_discriminator_features: bool = False
    """Set by terms that read `GeneratorStep.d_features` (collected in the adversarial pass, no extra pass)."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        self.weight = weight

    def forward(self, step: GeneratorStep) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward(step)")


class FeatureMatching(GeneratorLoss):
    """Match the discriminator's intermediate features of real and generated images.

    Paired (pix2pixHD, Wang et al. 2018): L1 between the features of each target and of its translation. Unpaired
    (Salimans et al. 2016): squared distance between per-channel means, for fakes without a real counterpart
    (CycleGAN, DCGAN). See `lit_gan.losses.feature_matching`.

    Args:
        weight: factor of the term in the generator's loss (pix2pixHD: 10).
    """

    name = "feature_matching"
    needs_discriminator_features = True

    def forward(self, step: GeneratorStep) -> Tensor:
        with torch.no_grad(), intermediate_features(step.discriminator) as real_features:
            step.discriminator(step.d_real)
        return feature_matching_loss(real_features, step.d_features, step.paired)
