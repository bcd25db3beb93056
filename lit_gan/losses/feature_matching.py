"""Feature matching: the generator matches the discriminator's intermediate features of real images.

Paired (pix2pixHD, Wang et al. 2018): L1 between the features of each real image and of its translation.
Unpaired (Salimans et al. 2016): squared distance between per-channel means over the batch and space, for when a
fake has no real counterpart (CycleGAN, DCGAN).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = (nn.LeakyReLU, nn.ReLU)


@contextmanager
def intermediate_features(net: nn.Module) -> Iterator[list[Tensor]]:
    """Collect the outputs of `net`'s activation layers, in call order, while the context is open.

    Works for any discriminator built from `nn.LeakyReLU`/`nn.ReLU` modules, with no change to the network.
    """
    features: list[Tensor] = []
    handles = [
        module.register_forward_hook(lambda _m, _i, out: features.append(out))
        for module in net.modules()
        if isinstance(module, ACTIVATIONS)
    ]
    try:
        yield features
    finally:
        for handle in handles:
            handle.remove()


def feature_matching_loss(real: list[Tensor], fake: list[Tensor], paired: bool) -> Tensor:
    """Mean over layers of the distance between real and fake features (each (B, C, H, W) or (B, C)).

    Args:
        real: features of real images (no gradient needed).
        fake: features of generated images, in the same layer order.
        paired: L1 per image (fake i translates real i) if True, else distance between channel means.
    """
    if len(real) != len(fake) or not real:
        raise ValueError(f"feature matching needs the same non-zero number of layers, got {len(real)} and {len(fake)}")
    if paired:
        terms = [F.l1_loss(f, r.detach()) for r, f in zip(real, fake, strict=True)]
    else:
        terms = [F.mse_loss(_channel_means(f), _channel_means(r.detach())) for r, f in zip(real, fake, strict=True)]
    return torch.stack(terms).mean()


def discriminate_and_match(D: nn.Module, fake: Tensor, real: Tensor, paired: bool) -> tuple[Tensor, Tensor]:
    """`D(fake)` (with gradients, for the generator's adversarial loss) and the feature-matching loss between D's
    activations on `real` (no gradient) and on `fake`, from one pass over each."""
    with intermediate_features(D) as fake_features:
        pred = D(fake)
    with torch.no_grad(), intermediate_features(D) as real_features:
        D(real)
    return pred, feature_matching_loss(real_features, fake_features, paired)


def _channel_means(x: Tensor) -> Tensor:
    """(B, C, ...) -> (C,) mean over the batch and every spatial position."""
    return x.transpose(0, 1).flatten(1).mean(1)
