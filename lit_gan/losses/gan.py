"""Adversarial losses by name.

Each loss splits into the three terms a GAN step needs: the discriminator's loss on real and on fake predictions,
and the generator's loss on the discriminator's predictions for its fakes. Predictions are raw scores (logits).
"""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


class GANLoss:
    """Base class: subclasses define `real`, `fake` (discriminator terms) and `generator`."""

    def real(self, pred: Tensor) -> Tensor:
        """Discriminator loss for predictions on real images."""
        raise NotImplementedError

    def fake(self, pred: Tensor) -> Tensor:
        """Discriminator loss for predictions on generated images."""
        raise NotImplementedError

    def generator(self, pred: Tensor) -> Tensor:
        """Generator loss for the discriminator's predictions on generated images."""
        raise NotImplementedError


GAN_LOSSES: dict[str, type[GANLoss]] = {}


def register_gan_loss(name: str) -> Callable[[type[GANLoss]], type[GANLoss]]:
    """Class decorator adding a loss to `GAN_LOSSES` under `name`; refuses duplicates."""

    def add(cls: type[GANLoss]) -> type[GANLoss]:
        if name in GAN_LOSSES:
            raise ValueError(f"GAN loss {name!r} is already registered by {GAN_LOSSES[name].__name__}")
        GAN_LOSSES[name] = cls
        return cls

    return add


def gan_loss(name: str) -> GANLoss:
    """The registered loss called `name`.

    Raises:
        ValueError: naming the valid losses, if `name` is unknown.
    """
    if name not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; valid: {', '.join(sorted(GAN_LOSSES))}")
    return GAN_LOSSES[name]()


@register_gan_loss("lsgan")
class LSGANLoss(GANLoss):
    """Least-squares GAN (Mao et al. 2017): MSE to target 1 for real, 0 for fake."""

    def real(self, pred: Tensor) -> Tensor:
        return F.mse_loss(pred, torch.ones_like(pred))

    def fake(self, pred: Tensor) -> Tensor:
        return F.mse_loss(pred, torch.zeros_like(pred))

    def generator(self, pred: Tensor) -> Tensor:
        return self.real(pred)


@register_gan_loss("vanilla")
class VanillaGANLoss(GANLoss):
    """The original GAN loss (Goodfellow et al. 2014) as binary cross-entropy on logits."""

    def real(self, pred: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))

    def fake(self, pred: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred))

    def generator(self, pred: Tensor) -> Tensor:
        return self.real(pred)


GANLossName = Literal["lsgan", "vanilla"]
"""Names accepted in configs; kept in step with `GAN_LOSSES` by a test."""
