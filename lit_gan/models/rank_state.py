"""Training state that Lightning does not checkpoint (`ProcessStates`), kept per process: the random number
generators (dropout, noise, gradient-penalty draws) and the image pools. Restoring both makes a resumed run continue
as if never stopped."""

import random
import warnings
from typing import Any

import numpy as np
import torch
from pytorch_lightning.trainer.states import TrainerFn

from lit_gan import compat
from lit_gan.distributed import gather_from_ranks
from lit_gan.image_pool import ImagePool


def rng_states() -> dict[str, Any]:
    """This process's global generators: torch (CPU and every initialized CUDA device), numpy and Python."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy = (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)  # tensors: loads weights_only
    return {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": numpy, "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what `rng_states` returned (CUDA states only where this process has as many devices)."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])


class ProcessStates:
    """LightningModule hooks that save, per process, the random generators and the image pools (`pools`) in every
    checkpoint, and restore them, so that a resumed run continues exactly; each process of a multi-process run draws
    from its own seed. Mix in before `LightningModule`; call `restore_rng_states()` in `on_train_start`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pools: dict[str, ImagePool] = {}  # fakes kept for the discriminators, by the domain of their images
        self._pools_restored = False
        self._rng_to_restore: dict | None = None

    def on_fit_start(self) -> None:
        # Each process draws its own noise, dropout masks and pool choices (seed_everything gives them all the same
        # seed); rank 0 keeps the single-process draws. A resumed run gets its saved states instead (on_train_start).
        if self.global_rank == 0:
            return
        if self._rng_to_restore is None:
            torch.manual_seed(torch.initial_seed() + 1_000_003 * self.global_rank)  # also seeds CUDA
        if not self._pools_restored:
            for pool in self.pools.values():
                pool.reseed(pool.seed + 1_000_003 * self.global_rank)

    def restore_rng_states(self) -> None:
        """Set this process's random generators to the checkpoint's, once, when resuming."""
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = {"rng": rng_states(), "pools": {name: pool.state_dict() for name, pool in self.pools.items()}}
        checkpoint["rank_states"] = gather_from_ranks(state)  # every process saves; only rank 0 writes the file

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get("rank_states")
        if not states:
            return
        trainer = compat.attached_trainer(self)
        world_size = trainer.world_size if trainer is not None else 1
        own = states[self.global_rank % len(states)]
        for name, pool in self.pools.items():
            if name in own["pools"]:
                pool.load_state_dict(own["pools"][name])
                self._pools_restored = True
        if len(states) == world_size:
            self._rng_to_restore = own["rng"]
        elif self.global_rank == 0 and trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            warnings.warn(
                f"the checkpoint was written by {len(states)} processes and this run has {world_size}: training "
                "resumes, but random draws (noise, dropout) will not continue exactly as before",
                stacklevel=2,
            )
