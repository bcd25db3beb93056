"""Tests generated from the catalogue: every `nn.Module` exported by `lit_gan.networks` is built tiny and checked.

A network added to `lit_gan.networks.__all__` is picked up automatically, with its own tiny settings (its class's
`smoke_test`, a `NetworkSmokeTest`); its tests fail until it has one, so that nothing is silently untested and no
test file is edited for a new network.
"""

import inspect
from typing import Any

import pytest
import torch
from jsonargparse import ArgumentParser
from torch import nn

import lit_gan.networks as networks
from lit_gan.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    PatchGANDiscriminator,
    PixelDiscriminator,
    ProGANDiscriminator,
    ProGANGenerator,
    ResnetGenerator,
    UnetGenerator,
)
from lit_gan.networks.norm import NORM_LAYERS
from lit_gan.networks.shapes import NetworkSmokeTest

NETWORKS: dict[str, type[nn.Module]] = {
    name: obj
    for name in networks.__all__
    if isinstance(obj := getattr(networks, name), type) and issubclass(obj, nn.Module)
}


def smoke_test(cls: type) -> NetworkSmokeTest | None:
    spec = getattr(cls, "smoke_test", None)
    return spec if isinstance(spec, NetworkSmokeTest) else None


TINY: dict[str, NetworkSmokeTest] = {name: spec for name, cls in NETWORKS.items() if (spec := smoke_test(cls))}
"""Each network's own tiny settings (its `smoke_test`)."""


def role(name: str) -> str:
    """The role of a network, from its class name: "generator" or "discriminator"."""
    for suffix in ("Generator", "Discriminator"):
        if name.endswith(suffix):
            return suffix.lower()
    pytest.fail(f"{name}: exported networks are named *Generator or *Discriminator; rename it or extend {__file__}")


def tiny(name: str, **overrides: Any) -> tuple[nn.Module, NetworkSmokeTest]:
    """The tiny network `name` (with `overrides`) and its settings; fails if it has no `smoke_test`."""
    if name not in TINY:
        pytest.fail(
            f"{name} is exported from lit_gan.networks but has no `smoke_test`: give the class a "
            "lit_gan.networks.shapes.NetworkSmokeTest (small constructor kwargs, its input/output shapes) so that "
            "the generated tests cover it"
        )
    spec = TINY[name]
    torch.manual_seed(0)
    net = NETWORKS[name](**{**spec.kwargs, **overrides})
    if spec.fade_in is not None:  # a growing network at its image_size while that resolution fades in
        net.grow_to(net.image_size, spec.fade_in)
    return net, spec


def init_params(cls: type) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(cls.__init__).parameters)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def batch(spec: NetworkSmokeTest, size: int) -> torch.Tensor:
    return torch.rand(size, *spec.input_shape) * 2 - 1


def check_output(name: str, out: torch.Tensor, spec: NetworkSmokeTest, size: int) -> None:
    assert out.shape == (size, *spec.output_shape)
    assert torch.isfinite(out).all()
    if role(name) == "generator" and spec.bounded:
        assert out.abs().max() <= 1


def check_train_step(name: str, net: nn.Module, spec: NetworkSmokeTest) -> None:
    """Train-mode forward and backward: every parameter gets a finite gradient."""
    net.train()
    out = net(batch(spec, 2))
    check_output(name, out, spec, 2)
    (out * torch.randn_like(out)).sum().backward()
    for param_name, p in net.named_parameters():
        assert p.grad is not None, f"{name}.{param_name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{param_name} has a non-finite gradient"


def check_eval(name: str, net: nn.Module, spec: NetworkSmokeTest) -> None:
    """Eval mode: a single image works and the output is deterministic (no dropout, running statistics)."""
    net.eval()
    x = batch(spec, 1)
    with torch.no_grad():
        out = net(x)
        check_output(name, out, spec, 1)
        torch.testing.assert_close(net(x), out)


def test_catalogue_is_not_empty_and_every_network_has_a_smoke_test():
    assert {"ResnetGenerator", "UnetGenerator", "PatchGANDiscriminator"} <= set(NETWORKS)
    assert set(TINY) == set(NETWORKS), f"networks without a smoke_test: {set(NETWORKS) - set(TINY)}"


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_train_forward_backward(name):
    net, spec = tiny(name)
    check_train_step(name, net, spec)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_eval_mode(name):
    net, spec = tiny(name)
    check_train_step(name, net, spec)  # updates running statistics first
    check_eval(name, net, spec)


NORM_CASES = [
    (name, norm) for name in sorted(NETWORKS) if "norm" in init_params(NETWORKS[name]) for norm in NORM_LAYERS
]


@pytest.mark.parametrize(("name", "norm"), NORM_CASES)
def test_every_norm(name, norm):
    net, spec = tiny(name, norm=norm)
    check_train_step(name, net, spec)
    check_eval(name, net, spec)


# The Progressive GAN's critic keeps its weights in check with equalized learning rate and the drift term instead.
WITHOUT_SPECTRAL_NORM = {"ProGANDiscriminator"}
DISCRIMINATORS = [n for n in sorted(NETWORKS) if n.endswith("Discriminator") and n not in WITHOUT_SPECTRAL_NORM]


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_spectral_norm_variant(name):
    assert "use_spectral_norm" in init_params(NETWORKS[name]), f"{name} must accept use_spectral_norm"
    net, spec = tiny(name, use_spectral_norm=True)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    assert n_params(net) == n_params(tiny(name)[0])  # the power-iteration vectors are buffers
    check_train_step(name, net, spec)
    check_eval(name, net, spec)


IMAGE_TO_IMAGE = [
    n for n in sorted(NETWORKS) if n.endswith("Generator") and n in TINY and len(TINY[n].input_shape) == 3
]


@pytest.mark.parametrize("name", IMAGE_TO_IMAGE)
def test_image_generators_check_the_size_multiple(name):
    net, spec = tiny(name)
    assert isinstance(net.size_multiple, int), f"{name} must expose size_multiple (the input size it divides)"
    assert all(s % net.size_multiple == 0 for s in spec.input_shape[1:])
    bad = torch.zeros(1, spec.input_shape[0], net.size_multiple + 2, net.size_multiple)
    with pytest.raises(ValueError, match=f"{name}.*multiples of {net.size_multiple}"):
        net(bad)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:.*deprecated:FutureWarning")
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_compiles_without_graph_breaks_and_traces(name):
    net, spec = tiny(name)
    net.eval()
    x = batch(spec, 1)
    with torch.no_grad():
        expected = net(x)
        torch.testing.assert_close(torch.compile(net, backend="eager", fullgraph=True)(x), expected)
        torch.testing.assert_close(torch.jit.trace(net, x)(x), expected)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_signature_is_a_typed_documented_cli(name):
    """jsonargparse builds the CLI from the signature; every argument is typed, has a default and is documented."""
    cls = NETWORKS[name]
    params = [p for p in init_params(cls).values() if p.name != "self"]
    for p in params:
        assert p.annotation is not inspect.Parameter.empty, f"{name}({p.name}) needs a type annotation"
        assert p.default is not inspect.Parameter.empty, f"{name}({p.name}) needs a default"
        assert f"    {p.name}: " in (cls.__doc__ or ""), f"{name}({p.name}) is not documented in the class Args:"
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "net")
    assert vars(parser.parse_args([]).net) == {p.name: p.default for p in params}


# The reference parameter counts (../shared/FACTS.md), built on the meta device: no memory, no initialization.
REFERENCE_COUNTS = {
    "resnet_9blocks": (ResnetGenerator, {"n_blocks": 9}, 11_378_179),
    "resnet_6blocks": (ResnetGenerator, {"n_blocks": 6}, 7_837_699),
    "patchgan_3layers": (PatchGANDiscriminator, {}, 2_764_737),
    "patchgan_pix2pix": (PatchGANDiscriminator, {"in_channels": 6, "norm": "batch"}, 2_768_705),
    "unet_256": (UnetGenerator, {"num_downs": 8}, 54_413_955),
    "unet_128": (UnetGenerator, {"num_downs": 7}, 41_828_995),
    "pixel": (PixelDiscriminator, {"norm": "instance"}, 8_705),  # the reference's default options: instance norm
    "dcgan_generator": (DCGANGenerator, {}, 3_576_704),
    "dcgan_discriminator": (DCGANDiscriminator, {}, 2_765_568),
    # the official G_paper and D_paper (fmap_base 8192, fmap_max 512, latent 512): the paper's Table 2 says 23.1M each
    "progan_generator_1024": (ProGANGenerator, {"image_size": 1024}, 23_079_115),
    "progan_discriminator_1024": (ProGANDiscriminator, {"image_size": 1024}, 23_087_249),
    "progan_generator_256": (ProGANGenerator, {"image_size": 256}, 23_044_309),
    "progan_discriminator_256": (ProGANDiscriminator, {"image_size": 256}, 23_052_353),
}


@pytest.mark.parametrize("key", REFERENCE_COUNTS)
def test_parameter_counts_match_reference(key):
    cls, kwargs, expected = REFERENCE_COUNTS[key]
    with torch.device("meta"):
        assert n_params(cls(**kwargs)) == expected
        if "use_spectral_norm" in init_params(cls):
            assert n_params(cls(**kwargs, use_spectral_norm=True)) == expected
