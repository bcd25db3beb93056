"""Speed settings that change how the networks run, not what they compute (up to float rounding)."""

from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torch.optim.swa_utils import AveragedModel

from lit_gan.contracts import CheckpointsActivations


class SpeedOptions(Callback):
    """Applied when a stage starts (`setup`), to every network of the module; checkpoints are unchanged by any of
    them. Mixed precision is Lightning's `trainer.precision` (`bf16-mixed`, `16-mixed`).

    Args:
        channels_last: keep the networks' weights, and so their activations, channels-last (NHWC): faster
            convolutions on GPUs with tensor cores (mixed precision) and with oneDNN on many CPUs.
        compile: compile every network with `torch.compile` (in place: parameter names and checkpoints stay the
            same). The first steps are slower while it compiles, and every new input size compiles again.
        compile_mode: `torch.compile`'s mode, e.g. "max-autotune" (longer compile, faster kernels on GPUs).
        compile_backend: `torch.compile`'s backend: "inductor" (generated kernels; needs a C compiler on CPUs),
            or one of `torch._dynamo.list_backends()`, e.g. "aot_eager" (traced and run by PyTorch's own kernels:
            compiles in seconds, for checking that a model compiles without waiting for code generation).
        tf32: on GPUs that have it (Ampere and newer), run float32 matrix products and convolutions on
            TensorFloat-32 cores (`torch.set_float32_matmul_precision("high")`): several times faster, with 10-bit
            mantissas inside the products; false keeps full float32.
        cudnn_benchmark: let cuDNN time the convolution algorithms for each input size once and keep the fastest
            (fixed crop sizes: faster; changing sizes, e.g. preprocess "none": a new search per size).
        adam: Adam's implementation: "fused" (one kernel per update; on GPUs and CPUs), "foreach" (one kernel per
            operation over all tensors), "for-loop" (per tensor), or "default" (torch's choice: foreach on GPUs,
            the loop on CPUs). The update is the same up to float rounding.
        checkpoint_activations: activation checkpointing of the generators that support it (ResNet: each residual
            block, as in CycleGAN and CUT; U-Net: each encoder and decoder level, as in pix2pix; ProGAN: each
            resolution's block): a block's activations are dropped after its forward and recomputed in backward,
            saving most of the generator's activation memory (for 512-1024 px images) at the cost of about one more
            generator forward per step. The same results: dropout draws the same masks again and batch norm updates
            its running statistics once. DCGAN's small generator does not support it and is left as it is; a model
            with no supporting network at all is refused.
    """

    def __init__(
        self,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
        tf32: bool = True,
        cudnn_benchmark: bool = True,
        adam: Literal["default", "fused", "foreach", "for-loop"] = "fused",
        checkpoint_activations: bool = False,
    ) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        self.compile_backend = compile_backend
        self.tf32 = tf32
        self.cudnn_benchmark = cudnn_benchmark
        self.adam = adam
        self.checkpoint_activations = checkpoint_activations
        self._applied: set[int] = set()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.strategy.root_device.type == "cuda":  # on CPUs "high" may allow bf16 inside matmuls: leave them
            self.apply_gpu_settings()
        pl_module.adam_options = ADAM_OPTIONS[self.adam]  # read by configure_optimizers, which runs after setup
        if id(pl_module) in self._applied:
            return
        self._applied.add(id(pl_module))
        if self.channels_last:
            pl_module.to(memory_format=torch.channels_last)
            on_cpu = trainer.strategy.root_device.type == "cpu"
            if on_cpu and any(isinstance(m, nn.InstanceNorm2d) for m in pl_module.modules()):
                rank_zero_warn(
                    "speed.channels_last with instance norm on the CPU: torch's CPU InstanceNorm2d backward gives "
                    "wrong gradients for a batch of one image with channels-last gradients (the xfail in "
                    "tests/callbacks/test_speed.py); at data.batch_size 1 set speed.channels_last false"
                )
        if self.checkpoint_activations:  # before compiling: the compiled graphs read the flag
            self.apply_activation_checkpointing(pl_module)
        if self.compile:
            names = [name for name, net in networks(pl_module)]
            for _, net in networks(pl_module):
                net.compile(backend=self.compile_backend, mode=self.compile_mode)
            rank_zero_info(
                f"speed: compiling {', '.join(names)} with torch.compile ({self.compile_backend}; slow at first)"
            )

    def apply_activation_checkpointing(self, pl_module: pl.LightningModule) -> None:
        """Turn activation checkpointing on in every network of `pl_module` that supports it.

        Raises:
            ValueError: naming speed.checkpoint_activations, if none does.
        """
        found = [(name, net) for name, net in networks(pl_module) if isinstance(net, CheckpointsActivations)]
        if not found:
            raise ValueError(
                f"speed.checkpoint_activations: no network of {type(pl_module).__name__} supports activation "
                f"checkpointing (its networks: {', '.join(type(n).__name__ for _, n in networks(pl_module))}); it "
                "is for the ResNet, U-Net and ProGAN generators: set speed.checkpoint_activations false"
            )
        for _, net in found:
            net.set_activation_checkpointing(True)
        rank_zero_info(f"speed: activation checkpointing in {', '.join(name for name, _ in found)}")

    def apply_gpu_settings(self) -> None:
        """TF32 and cuDNN's algorithm search, process-wide (they are global settings of torch)."""
        torch.set_float32_matmul_precision("high" if self.tf32 else "highest")
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.backends.cudnn.benchmark = self.cudnn_benchmark


ADAM_OPTIONS = {"default": {}, "fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}


def networks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The module's networks: the entries of its `nn.ModuleDict`s (generators, discriminators, the EMA copies' inner
    networks) and its other direct children that hold parameters."""
    found = []
    for name, child in module.named_children():
        if isinstance(child, nn.ModuleDict):  # e.g. {"AtoB": G, ...}, the EMA copies {"AtoB": AveragedModel(G)}
            found += [(f"{name}.{key}", n.module if isinstance(n, AveragedModel) else n) for key, n in child.items()]
        elif any(True for _ in child.parameters()):
            found.append((name, child))
    return found
