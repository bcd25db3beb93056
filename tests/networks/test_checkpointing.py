"""Activation checkpointing of the generators: the same outputs, gradients and batch-norm statistics as without it,
with fewer activations kept for backward, and nothing changed outside training (eval, no_grad, TorchScript, export)."""

import copy

import pytest
import torch
from torch import nn

from lit_gan.contracts import CheckpointsActivations
from lit_gan.networks import ProGANGenerator, ResnetGenerator, UnetGenerator

STEPS = 2


def grown_progan() -> ProGANGenerator:
    net = ProGANGenerator(nz=8, image_size=32, fmap_base=32, fmap_max=8)
    net.grow_to(32, alpha=0.5)  # every block runs, and the previous resolution's toRGB fades out
    return net


GENERATORS = {  # name -> (network with batch norm and dropout where it has them, its input)
    "resnet": (lambda: ResnetGenerator(ngf=4, n_blocks=2, norm="batch", use_dropout=True), (2, 3, 32, 32)),
    "resnet_antialias": (lambda: ResnetGenerator(ngf=4, n_blocks=1, antialias=True), (2, 3, 32, 32)),  # CUT's
    "unet": (lambda: UnetGenerator(num_downs=6, ngf=4, norm="batch", use_dropout=True), (2, 3, 64, 64)),  # dropout
    "progan": (grown_progan, (2, 8)),
}
BLOCKS = {"resnet": 2, "resnet_antialias": 1, "unet": 2 * 6, "progan": 4}  # checkpointed segments per forward


def train_steps(net: nn.Module, shape: tuple[int, ...], features: bool = False) -> list[torch.Tensor]:
    """`STEPS` forwards and backwards of `net` in train mode on seeded inputs (dropout seeded too): the outputs."""
    torch.manual_seed(1)
    outputs = []
    for _ in range(STEPS):
        x = torch.randn(shape)
        ys = net.features(x, [4, 8, 12]) if features else [net(x)]
        sum(y.square().mean() for y in ys).backward()
        outputs += [y.detach() for y in ys]
    return outputs


def assert_same_training(plain: nn.Module, checkpointed: nn.Module) -> None:
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")
    for (name, b), c in zip(plain.named_buffers(), checkpointed.buffers(), strict=True):
        torch.testing.assert_close(c, b, rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("name", list(GENERATORS))
def test_checkpointed_training_matches_plain_training(name, checkpoint_calls):
    build, shape = GENERATORS[name]
    torch.manual_seed(0)
    plain = build().train()
    checkpointed = copy.deepcopy(plain)
    assert isinstance(checkpointed, CheckpointsActivations)
    checkpointed.set_activation_checkpointing(True)
    expected = train_steps(plain, shape)
    assert not checkpoint_calls
    got = train_steps(checkpointed, shape)
    assert len(checkpoint_calls) == STEPS * BLOCKS[name]
    for y, y_plain in zip(got, expected, strict=True):
        torch.testing.assert_close(y, y_plain, rtol=0, atol=0)
    assert_same_training(plain, checkpointed)
    tracked = [b for n, b in checkpointed.named_buffers() if n.endswith("num_batches_tracked")]
    assert all(int(b) == STEPS for b in tracked)  # batch norm counted each batch once, not again when recomputed
    assert bool(tracked) == ("antialias" not in name and name != "progan")


def test_features_of_a_checkpointed_resnet_match_plain_ones(checkpoint_calls):
    """CUT's PatchNCE runs the generator's layers one by one (`features`): its residual blocks checkpoint there."""
    build, shape = GENERATORS["resnet_antialias"]
    plain = build().train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_activation_checkpointing(True)
    expected = train_steps(plain, shape, features=True)
    got = train_steps(checkpointed, shape, features=True)
    assert len(checkpoint_calls) == STEPS  # the one residual block (layer 12), in each step
    for y, y_plain in zip(got, expected, strict=True):
        torch.testing.assert_close(y, y_plain, rtol=0, atol=0)
    assert_same_training(plain, checkpointed)


def saved_numel(net: nn.Module, shape: tuple[int, ...]) -> int:
    """Elements of the tensors one training forward of `net` keeps for backward, outside checkpointed blocks (inside
    them checkpoint keeps only the blocks' inputs)."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        net(torch.randn(shape)).mean().backward()
    return total


SAVED_AT_MOST = {"resnet": 0.8, "resnet_antialias": 0.95, "unet": 0.3, "progan": 0.2}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_checkpointing_keeps_fewer_activations(name):
    """What the blocks are of the tiny network bounds the saving: measured 0.73 of the elements kept without
    checkpointing for 2 ResNet blocks (0.43 with 9), 0.92 for CUT's anti-aliased ResNet with 1 block, 0.25 for the
    U-Net and 0.13 for ProGAN, where every layer but the dense one and toRGB is in a block."""
    build, shape = GENERATORS[name]
    net = build().train()
    plain = saved_numel(net, shape)
    net.set_activation_checkpointing(True)
    assert saved_numel(net, shape) < SAVED_AT_MOST[name] * plain


@pytest.mark.parametrize("name", list(GENERATORS))
def test_no_checkpoint_outside_training_with_gradients(name, checkpoint_calls):
    build, shape = GENERATORS[name]
    net = build()
    net.set_activation_checkpointing(True)
    with torch.no_grad():
        net.train()(torch.randn(shape))
    net.eval()(torch.randn(shape)).sum().backward()
    assert not checkpoint_calls


@pytest.mark.filterwarnings(r"ignore:.*torch\.jit.* is deprecated:FutureWarning")
@pytest.mark.parametrize("name", list(GENERATORS))
def test_torchscript_and_export_work_with_checkpointing_on(name):
    build, shape = GENERATORS[name]
    torch.manual_seed(0)
    net = build().eval()
    net.set_activation_checkpointing(True)
    x = torch.randn(shape)
    with torch.no_grad():
        expected = net(x)
        scripted = torch.jit.script(net)
        torch.testing.assert_close(scripted(x), expected)
        exported = torch.export.export(net, (x,))
        torch.testing.assert_close(exported.module()(x), expected)
    scripted.train()(torch.randn(shape)).mean().backward()  # training through the scripted network runs plainly


@pytest.mark.parametrize("name", ["resnet_batch_norm", "unet_without_dropout"])
def test_compiled_checkpointed_training_matches_plain_training(name):
    """torch.compile (aot_eager: no code generation) traces the checkpointed blocks; the compiled backward
    recomputes values but not the batch-norm updates. Dropout is left out: compiled code draws other masks."""
    build = {
        "resnet_batch_norm": lambda: ResnetGenerator(ngf=4, n_blocks=2, norm="batch"),
        "unet_without_dropout": lambda: UnetGenerator(num_downs=5, ngf=4, norm="batch", use_dropout=False),
    }[name]
    torch.manual_seed(0)
    plain = build().train()
    compiled = copy.deepcopy(plain)
    compiled.set_activation_checkpointing(True)
    compiled.compile(backend="aot_eager")
    expected, got = train_steps(plain, (2, 3, 32, 32)), train_steps(compiled, (2, 3, 32, 32))
    torch.testing.assert_close(got, expected)
    for (n, p), q in zip(plain.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=lambda m, n=n: f"{n}: {m}")
    for (n, b), c in zip(plain.named_buffers(), compiled.buffers(), strict=True):
        torch.testing.assert_close(c, b, msg=lambda m, n=n: f"{n}: {m}")
