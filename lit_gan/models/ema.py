"""The generators' exponential moving average: torch's `AveragedModel`, updated without reading the device back."""

from collections import defaultdict
from itertools import chain

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA(AveragedModel):
    """`AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)` with the same numbers,
    whose update does not stall the step on a GPU.

    `AveragedModel.update_parameters` reads its `n_averaged` counter back to the host twice per call (whether this is
    the first update, which copies the weights), which waits for the device to finish all queued work. Here that
    counter is read once, at the first update after the model is built or loaded; later updates average on the device
    (one `_foreach_lerp_` per device and dtype) and count on it.

    Args:
        module: the generator to average (copied).
        decay: the EMA decay, e.g. 0.999.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        super().__init__(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self._averaging = False  # known to have averaged at least once (host side)
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_averaging", False))

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if not self._averaging:  # the first update since built or loaded: torch's own, reading n_averaged once
            super().update_parameters(model)
            self._averaging = True
            return
        groups: dict[tuple, tuple[list[Tensor], list[Tensor]]] = defaultdict(lambda: ([], []))
        averaged = chain(self.module.parameters(), self.module.buffers())
        current = chain(model.parameters(), model.buffers())
        for p_averaged, p_model in zip(averaged, current, strict=True):
            ema, src = groups[p_averaged.device, p_averaged.dtype]
            ema.append(p_averaged.detach())
            src.append(p_model.detach().to(p_averaged.device))
        for ema, src in groups.values():
            self.multi_avg_fn(ema, src, self.n_averaged)
        self.n_averaged += 1
