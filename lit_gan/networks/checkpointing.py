"""Activation checkpointing of a generator's blocks: a block's activations are dropped after its forward and
recomputed in backward, trading about one more forward of the generator per step for the memory that holds them
(what limits CycleGAN, pix2pix, CUT and ProGAN generators at 512-1024 px).

A network opts in by inheriting `ActivationCheckpointing` and running each block through `run_block` (outside
TorchScript: `if torch.jit.is_scripting()` runs the block plainly, so scripting never sees the checkpoint call). No
module is wrapped: parameter names and checkpoints are the same with or without it.
"""

import contextlib
import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager

import torch
import torch.utils.checkpoint
from torch import Tensor, nn


class ActivationCheckpointing:
    """Mixin of a network (or block) whose blocks may be checkpointed; `set_activation_checkpointing` turns it on
    for the network and every such block inside it (a block that is called directly, as CUT's `features` calls a
    `ResnetGenerator`'s layers, reads its own flag)."""

    checkpoint_activations: bool = False
    """Recompute the blocks' activations in backward (only in training mode with gradients enabled)."""

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Turn activation checkpointing of this network's blocks on or off."""
        assert isinstance(self, nn.Module), "ActivationCheckpointing is a mixin of nn.Modules"
        for module in self.modules():
            if isinstance(module, ActivationCheckpointing):
                module.checkpoint_activations = bool(enabled)


def run_block(block: nn.Module, x: Tensor, enabled: bool) -> Tensor:
    """`block(x)`, checkpointed when `enabled` and `block` trains with gradients enabled: its activations are
    recomputed in backward instead of kept. In eval mode or under `no_grad` nothing would be kept anyway, and the
    plain call runs.

    Dropout draws the same mask again (torch's `preserve_rng_state`); batch norm normalises by the same batch
    statistics again, and its running statistics are updated once per forward all the same (`_running_stats_kept`;
    under torch.compile the compiled backward recomputes values only, never the buffers' updates).
    """
    if not (enabled and block.training and torch.is_grad_enabled()):
        return block(x)
    if torch.compiler.is_compiling():  # compiled graphs are functional: the recomputation updates no buffer
        return torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
    contexts = functools.partial(_recompute_contexts, block)
    return torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False, context_fn=contexts)


def _recompute_contexts(block: nn.Module) -> tuple[AbstractContextManager, AbstractContextManager]:
    """checkpoint's (forward context, recompute context): the first forward as usual, the recomputation in
    backward with its updates of running statistics undone."""
    return contextlib.nullcontext(), _running_stats_kept(block)


@contextlib.contextmanager
def _running_stats_kept(block: nn.Module) -> Iterator[None]:
    """On exit, `block`'s norm layers that track running statistics (batch norm, synchronized or not) hold the
    `running_mean`, `running_var` and `num_batches_tracked` they held on entry: the recomputation's update, a
    second one for the same batch, is undone, bit for bit.

    Why not `track_running_stats = False` during the recomputation (same batch statistics, no update): torch's batch
    norm then saves two tensors fewer for backward (the running buffers), and checkpoint refuses a recomputation that
    saves other tensors than the forward did. Undoing the update keeps the recomputation identical to the forward;
    the buffers are per channel, so copying them costs nothing next to the convolutions.
    """
    norms = [m for m in block.modules() if m.training and _tracks_running_stats(m)]
    kept = [{name: b.clone() for name, b in m.named_buffers(recurse=False) if b is not None} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for norm, buffers in zip(norms, kept):
                for name, value in buffers.items():
                    getattr(norm, name).copy_(value)


def _tracks_running_stats(module: nn.Module) -> bool:
    """Whether `module` is a norm layer that updates running statistics in training (batch norm, synchronized or
    not, and instance norm with `track_running_stats`)."""
    return getattr(module, "track_running_stats", False) and getattr(module, "running_mean", None) is not None
