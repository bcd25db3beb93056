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

    With `rampup` (StyleGAN2-ADA's `ema_rampup`), the average's half-life grows with training instead of being the
    decay's from the start, so that the first averages do not blur the samples with the random initial weights:
    update t (0-based: the number of updates before it) uses decay `min(decay, 0.5 ** (1 / (t * rampup)))`, i.e. a
    half-life of at most `rampup` times the steps taken so far (ADA: `ema_nimg = min(ema_nimg, cur_nimg *
    ema_rampup)`, with the batch size cancelling out). The first update copies the weights, as without it.

    Args:
        module: the generator to average (copied).
        decay: the EMA decay, e.g. 0.999.
        rampup: the ramp-up ratio (StyleGAN2-ADA: 0.05), or None for a constant decay.
    """

    def __init__(self, module: nn.Module, decay: float, rampup: float | None = None) -> None:
        super().__init__(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        if rampup is not None and rampup <= 0:
            raise ValueError(f"model.ema_rampup must be > 0 (StyleGAN2-ADA: 0.05) or null, got {rampup}")
        self.decay, self.rampup = decay, rampup
        self._averaging = False  # known to have averaged at least once (host side)
        self._updates = 0  # with `rampup`: n_averaged, counted on the host once read
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_averaging", False))

    def decay_at(self, updates: int) -> float:
        """The decay of the update that follows `updates` earlier ones (0 copies the weights)."""
        if updates == 0:
            return 0.0
        if self.rampup is None:
            return self.decay
        return min(self.decay, 0.5 ** (1.0 / (updates * self.rampup)))

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if self.rampup is not None:
            self._update_with_rampup(model)
            return
        if not self._averaging:  # the first update since built or loaded: torch's own, reading n_averaged once
            super().update_parameters(model)
            self._averaging = True
            return
        for ema, src in self._groups(model).values():
            self.multi_avg_fn(ema, src, self.n_averaged)
        self.n_averaged += 1

    def _update_with_rampup(self, model: nn.Module) -> None:
        """One update at `decay_at(n_averaged)`: n_averaged is read from the device once (after building or loading)
        and counted on the host after that."""
        if not self._averaging:
            self._updates, self._averaging = int(self.n_averaged), True
        update = get_ema_multi_avg_fn(self.decay_at(self._updates))  # torch's update at this step's decay (0: copy)
        for ema, src in self._groups(model).values():
            update(ema, src, None)
        self.n_averaged += 1
        self._updates += 1

    def _groups(self, model: nn.Module) -> dict[tuple, tuple[list[Tensor], list[Tensor]]]:
        """The average's and `model`'s parameters and buffers (detached), grouped by the average's device and dtype."""
        groups: dict[tuple, tuple[list[Tensor], list[Tensor]]] = defaultdict(lambda: ([], []))
        averaged = chain(self.module.parameters(), self.module.buffers())
        current = chain(model.parameters(), model.buffers())
        for p_averaged, p_model in zip(averaged, current, strict=True):
            ema, src = groups[p_averaged.device, p_averaged.dtype]
            ema.append(p_averaged.detach())
            src.append(p_model.detach().to(p_averaged.device))
        return groups
