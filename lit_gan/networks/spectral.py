"""Spectral normalization (Miyato et al. 2018) of a network's convolutions."""

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from lit_gan.compat_torch import spectral_power_iterations

POWER_ITERATIONS_AFTER_INIT = 15  # as many as `spectral_norm` runs when it is registered


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Constrain every `nn.Conv2d` in `module` (in place) to spectral norm 1; returns `module`, for chaining.

    The weight becomes a parametrization: the trainable tensor is `conv.parametrizations.weight.original`, and the
    power-iteration vectors are buffers, so the parameter count does not change. Convolutions that already have a
    parametrized weight are left alone.
    """
    for conv in list(module.modules()):
        if isinstance(conv, nn.Conv2d) and not parametrize.is_parametrized(conv, "weight"):
            spectral_norm(conv)
    return module


@torch.no_grad()
def refresh_spectral_norm(module: nn.Module) -> None:
    """Re-estimate the singular vectors of `module`'s own spectrally normalized weight after it was redrawn.

    Without this, a re-initialized weight is divided by a stale estimate of its largest singular value (in eval
    mode the estimate is never updated), which can be far off, even negative.
    """
    if not parametrize.is_parametrized(module, "weight"):
        return
    spectral_power_iterations(module, POWER_ITERATIONS_AFTER_INIT)
