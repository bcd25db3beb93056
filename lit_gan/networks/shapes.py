"""Input checks that give a clear error instead of a shape mismatch deep inside a network."""

import torch
from torch import Tensor


def check_size_multiple(x: Tensor, multiple: int, network: str) -> None:
    """Raise a ValueError naming `network` unless the height and width of `x` (..., H, W) are multiples of `multiple`.

    Plain Python on `x.shape`: free in eager mode, scriptable, and compiled away by `torch.compile`; skipped while
    `torch.jit.trace` records (a traced graph has fixed sizes anyway).
    """
    if torch.jit.is_tracing():
        return
    if x.shape[-2] % multiple != 0 or x.shape[-1] % multiple != 0:
        raise ValueError(
            f"{network} needs height and width that are multiples of {multiple}, "
            f"got {x.shape[-2]}x{x.shape[-1]}: resize or crop the input"
        )
