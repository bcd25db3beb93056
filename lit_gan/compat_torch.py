"""Private torch API that the plain-torch layers (networks, losses) need, apart from `lit_gan.compat` so that they do
not load Lightning. The same rules as there: each function wraps one internal for which no public mechanism exists,
says what is missing and the version it was checked against (torch 2.14); `tests/test_compat.py` checks each one.
"""

from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm


def spectral_power_iterations(module: nn.Module, n_iterations: int) -> None:
    """Run `n_iterations` power iterations of every spectral-norm parametrization of `module.weight`, updating its
    singular-vector estimates (buffers `_u`, `_v`) from the current weight; no random draws.

    Missing publicly: re-estimating them; removing and registering `spectral_norm` again draws new random vectors
    and replaces the weight's Parameter.
    """
    original = module.parametrizations.weight.original
    for norm in module.parametrizations.weight:
        if isinstance(norm, _SpectralNorm) and original.ndim > 1:
            norm._power_method(norm._reshape_weight_to_matrix(original), n_iterations)
