"""Multi-process (DDP) runs: the DDP setting the GAN steps need, and one model for evaluation on every process."""

from typing import Any

import torch.distributed as dist
from pytorch_lightning.strategies import DDPStrategy, Strategy
from torch import nn

from lit_gan.compat import ddp_kwargs


def find_unused_parameters_by_default(strategy: Strategy) -> None:
    """Turn on DDP's `find_unused_parameters` for a DDP strategy that does not set it (`ddp`, or `auto` with several
    devices); an explicit setting (e.g. strategy `ddp_find_unused_parameters_false`) is kept.

    Why: every GAN here steps its discriminators and its generators with separate backward passes in one
    `training_step` (manual optimization), and Lightning wraps the whole LightningModule in one
    DistributedDataParallel. The discriminators' loss never reaches the generators (the fakes are detached) and the
    generators' loss runs with the discriminators frozen, so each backward pass leaves parameters without gradients,
    which DDP rejects ("It looks like your LightningModule has parameters that were not used in producing the loss")
    unless it looks for them. The cost: at every backward pass DDP walks the autograd graph from the loss to find
    them, and all-reduces the gradient buckets of every parameter (the unused ones marked ready), so an iteration's
    two backward passes move about twice the gradient bytes of one pass over all networks. For these convolutional
    networks the compute dominates.
    """
    if isinstance(strategy, DDPStrategy):
        ddp_kwargs(strategy).setdefault("find_unused_parameters", True)


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy process `src`'s buffers of `module` (batch-norm running statistics, EMA copies, fixed noise) into every
    process; a collective (every process must call it), and nothing outside a distributed run.

    DDP copies rank 0's buffers into the other processes only at the start of each training step, and each process then
    updates its batch-norm statistics from its own batch: between steps the processes hold slightly different models.
    After this call every process holds rank 0's, the one that checkpoints save.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=src)


def gather_from_ranks(obj: Any) -> list[Any]:
    """`obj` of every process in rank order (a collective: every process must call it); `[obj]` when not
    distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
