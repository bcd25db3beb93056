"""Adversarial losses by name.

Each loss splits into the three terms a GAN step needs: the discriminator's loss on real and on fake predictions,
and the generator's loss on the discriminator's predictions for its fakes. Predictions are raw scores (logits).
A loss may add a regularizer on the discriminator itself (`penalty`): WGAN-GP's gradient penalty.
"""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


class GANLoss:
    """Base class: subclasses define `real`, `fake` (discriminator terms) and `generator`."""

    midpoint: float = 0.0
    """The score halfway between the discriminator's fake and real targets: 0 for logits, 0.5 for LSGAN's 0/1
    targets. Adaptive augmentation (ADA) counts the real images scored above it."""

    def real(self, pred: Tensor) -> Tensor:
        """Discriminator loss for predictions on real images."""
        raise NotImplementedError

    def fake(self, pred: Tensor) -> Tensor:
        """Discriminator loss for predictions on generated images."""
        raise NotImplementedError

    def generator(self, pred: Tensor) -> Tensor:
        """Generator loss for the discriminator's predictions on generated images."""
        raise NotImplementedError

    def penalty(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, downscaled: int = 1
    ) -> Tensor | None:
        """Extra discriminator loss computed from the discriminator itself, or None (the default). `downscaled`: the
        images are the images the penalty is defined on, box-downscaled by this factor per axis (see
        `gradient_penalty`)."""
        return None

    def discriminator(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: float = 1.0
    ) -> Tensor:
        """The discriminator's whole loss: (real + fake terms) * `weight`, plus `penalty` when the loss has one.

        `fake` is detached here: the discriminator's step never trains the generator.
        """
        return self.discriminator_and_real_scores(discriminator, real, fake, weight)[0]

    def discriminator_and_real_scores(
        self,
        discriminator: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        weight: float = 1.0,
        downscaled: int = 1,
    ) -> tuple[Tensor, Tensor]:
        """`discriminator`'s loss (as `discriminator`) and its predictions on `real`, e.g. for ADA's heuristic;
        `downscaled` as in `penalty`."""
        fake = fake.detach()
        pred_real = discriminator(real)
        loss = (self.real(pred_real) + self.fake(discriminator(fake))) * weight
        penalty = self.penalty(discriminator, real, fake, downscaled)
        return (loss if penalty is None else loss + penalty), pred_real


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

    midpoint = 0.5

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


@register_gan_loss("hinge")
class HingeGANLoss(GANLoss):
    """Hinge loss (Lim & Ye 2017; used by SAGAN and BigGAN): relu(1 - D(real)), relu(1 + D(fake)); G: -D(fake)."""

    def real(self, pred: Tensor) -> Tensor:
        return F.relu(1.0 - pred).mean()

    def fake(self, pred: Tensor) -> Tensor:
        return F.relu(1.0 + pred).mean()

    def generator(self, pred: Tensor) -> Tensor:
        return -pred.mean()


@register_gan_loss("wgangp")
class WGANGPLoss(GANLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017): the critic minimises mean(D(fake)) -
    mean(D(real)) + 10 * E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake images.

    Batch norm in the critic makes the penalty depend on the batch; the paper uses no norm or layer norm.
    """

    weight = 10.0  # lambda of the paper and of the reference code

    def real(self, pred: Tensor) -> Tensor:
        return -pred.mean()

    def fake(self, pred: Tensor) -> Tensor:
        return pred.mean()

    def generator(self, pred: Tensor) -> Tensor:
        return -pred.mean()

    def penalty(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, downscaled: int = 1
    ) -> Tensor:
        return self.weight * gradient_penalty(discriminator, real, fake.detach(), downscaled)


@register_gan_loss("wgangp_drift")
class WGANGPDriftLoss(WGANGPLoss):
    """WGAN-GP plus the Progressive GAN's drift term (Karras et al. 2018): the critic also minimises
    `drift` * E[D(real)^2] (epsilon_drift 0.001), which keeps its scores from drifting far from zero."""

    drift = 1e-3  # the paper's and the official code's wgan_epsilon

    def real(self, pred: Tensor) -> Tensor:
        return -pred.mean() + self.drift * pred.square().mean()


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, downscaled: int = 1
) -> Tensor:
    """E[(||grad_x D(x)||_2 - 1)^2] at x = eps * real + (1 - eps) * fake, one eps ~ U(0, 1) per sample.

    `downscaled` k > 1: `real` and `fake` are the k x k box-downscales of the images the penalty is defined on, as the
    Progressive GAN's critic sees the r x r version of its full-resolution input (the official code upscales every
    resolution to the final one, and its critic box-downscales it again first). Its gradient with respect to the
    full-resolution interpolate is that of the r x r one spread evenly over each k x k block, 1/k^2 per pixel, so
    its norm is ||grad|| / k: the penalty is E[(||grad_x D(x)|| / k - 1)^2] on the cheap r x r forward.

    The graph is kept (create_graph) so the penalty trains the discriminator. It is computed in float32 even under
    mixed precision (autocast off): in float16 the double backward through the critic's normalisation layers gives
    inf/nan gradients, and a GradScaler would then skip every critic step.
    """
    real, fake = real.float(), fake.float()
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    with torch.autocast(real.device.type, enabled=False):
        x = (eps * real + (1 - eps) * fake).requires_grad_(True)  # (B, C, H, W)
        pred = discriminator(x)
        (grad,) = torch.autograd.grad(pred.sum(), x, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) / downscaled - 1) ** 2).mean()


def r1_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E[||grad_x sum D(x)||_2^2] over the `real` images x, the sum over a patch
    discriminator's outputs, as StarGAN v2's `r1_reg` (which scales it by 0.5) and StyleGAN2's (gamma / 2).

    The graph is kept (create_graph) so the penalty trains the discriminator; computed in float32 with autocast off,
    as `gradient_penalty`.
    """
    with torch.autocast(real.device.type, enabled=False):
        x = real.detach().float().requires_grad_(True)  # (B, C, H, W)
        return r1_from_scores(discriminator(x), x)


def r1_from_scores(scores: Tensor, x: Tensor) -> Tensor:
    """R1 from a discriminator's `scores` of images `x` (which require grad): E[||grad_x sum scores||_2^2], keeping the
    graph, for a loss that also uses the scores (one forward pass for both, as StarGAN v2's r1_reg)."""
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)  # (B, C, H, W)
    return grad.square().flatten(1).sum(1).mean()


GANLossName = Literal["lsgan", "vanilla", "hinge", "wgangp", "wgangp_drift"]
"""Names accepted in configs; kept in step with `GAN_LOSSES` by a test."""
