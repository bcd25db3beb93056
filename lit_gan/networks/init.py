"""Weight initialization of the reference implementations (normal 0.02 by default)."""

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn
from torch.nn.utils import parametrize

from lit_gan.networks.spectral import refresh_spectral_norm

InitName = Literal["normal", "xavier", "kaiming", "orthogonal"]

WEIGHT_INITS: dict[str, Callable[[Tensor, float], object]] = {
    "normal": lambda w, gain: nn.init.normal_(w, 0.0, gain),
    "xavier": lambda w, gain: nn.init.xavier_normal_(w, gain=gain),
    "kaiming": lambda w, gain: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
    "orthogonal": lambda w, gain: nn.init.orthogonal_(w, gain=gain),
}


def trainable_weight(module: nn.Module) -> Tensor:
    """The weight tensor that an initializer must write to.

    Under a parametrization (spectral norm) `module.weight` is recomputed on every access, so writing to it is lost;
    the stored tensor is `module.parametrizations.weight.original`.
    """
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialize `net` in place the way the reference CycleGAN/pix2pix code does.

    Convolution and linear weights are drawn by `init_type` (biases zeroed); batch-norm weights (synchronized or
    not) are drawn from N(1, gain) and their biases zeroed. Spectrally normalized weights are drawn before the
    normalization and their singular-vector estimates refreshed. Then each module's `after_init_weights()`, where it
    has one, finishes its own initialization (e.g. `ResnetGenerator(residual=True)` zeroes its output convolution).

    Args:
        net: the network to initialize.
        init_type: one of `WEIGHT_INITS`.
        gain: standard deviation for "normal", gain for "xavier" and "orthogonal".

    Returns:
        `net`, for chaining.
    """
    if init_type not in WEIGHT_INITS:
        raise ValueError(f"unknown init_type {init_type!r}; valid: {', '.join(sorted(WEIGHT_INITS))}")
    draw = WEIGHT_INITS[init_type]
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            draw(trainable_weight(module), gain)
            refresh_spectral_norm(module)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d | nn.SyncBatchNorm):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    for module in net.modules():  # a network's own last word, e.g. a zero output layer (ResnetGenerator residual)
        finish = getattr(module, "after_init_weights", None)
        if callable(finish):
            finish()
    return net
