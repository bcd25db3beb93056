"""A frozen VGG feature network for perceptual and style losses (torchvision's ImageNet VGG16/VGG19).

Weights come from, in order: an explicit file (argument `weights_file` or `LIT_GAN_VGG_WEIGHTS`), the torch.hub cache
(`torch.hub.get_dir()/checkpoints/vgg16-397923af.pth`), then torchvision's download into that cache. Without any of
them, building the network fails at once (when the config is instantiated) with a `VGGWeightsError` saying how to
supply the file.
"""

import os
import socket
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.models import VGG16_Weights, VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from lit_gan.metrics.inception import hub_cache_path as hub_checkpoint

WEIGHTS_ENV = "LIT_GAN_VGG_WEIGHTS"
DOWNLOAD_TIMEOUT_S = 20.0
RANDOM_SEED = 0
VGGArch = Literal["vgg16", "vgg19"]
VGGWeightsName = Literal["imagenet", "random"]
_ARCHS = {"vgg16": ("D", VGG16_Weights.IMAGENET1K_V1), "vgg19": ("E", VGG19_Weights.IMAGENET1K_V1)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsError(RuntimeError):
    """No usable VGG weights: the message names the URL, the cache file and how to supply a local copy."""


def layer_names(arch: VGGArch) -> list[str]:
    """The names of `arch`'s feature layers in order: conv<b>_<i>, relu<b>_<i> (after each conv), pool<b>."""
    names, block, index = [], 1, 0
    for value in cfgs[_ARCHS[arch][0]]:
        if value == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 0
        else:
            index += 1
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
    return names


def hub_cache_path(arch: VGGArch) -> Path:
    """The file torch.hub keeps `arch`'s ImageNet weights in (whether or not it exists)."""
    return hub_checkpoint(_ARCHS[arch][1].url)


def _download(url: str, path: Path) -> str | None:
    """Download `url` to `path`; return why it failed, or None. A blackholed network fails after a timeout."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=False)
        return None
    except Exception as err:  # URLError, timeouts, a read-only cache folder
        return f"{type(err).__name__}: {err}"
    finally:
        socket.setdefaulttimeout(previous)


def find_weights(arch: VGGArch, weights_file: str | os.PathLike | None = None, key: str = "weights_file") -> Path:
    """The file of `arch`'s ImageNet weights: `weights_file`, `LIT_GAN_VGG_WEIGHTS`, the hub cache or a download.

    Raises:
        VGGWeightsError: naming the URL, the cache file and how to supply a local copy (`key` or the variable).
    """
    explicit, origin = (weights_file, key) if weights_file else (os.environ.get(WEIGHTS_ENV), WEIGHTS_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise VGGWeightsError(f"VGG weights file {explicit} (from {origin}) does not exist")
        return Path(explicit)
    url, cache = _ARCHS[arch][1].url, hub_cache_path(arch)
    if cache.is_file():
        return cache
    failure = _download(url, cache)
    if failure is None and cache.is_file():
        return cache
    raise VGGWeightsError(
        f"No ImageNet weights for {arch} (download failed: {failure}). Do one of:\n"
        f"  - download {url} to {cache};\n"
        f"  - set `{key}` (the loss term's init arg) or the environment variable {WEIGHTS_ENV} to a local copy;\n"
        f"  - use weights: random (tests only: the loss is then meaningless)."
    )


class VGGFeatures(nn.Module):
    """A frozen VGG (eval mode, no gradients) that returns the named layers' outputs of images in [-1, 1].

    Layers are named per block b and convolution i: `conv<b>_<i>` (the convolution's output, before its ReLU),
    `relu<b>_<i>` (after it) and `pool<b>`; e.g. Johnson et al. 2016 use relu1_2, relu2_2, relu3_3, relu4_3 of VGG16,
    Gatys et al. 2016 "conv1_1" .. "conv5_1" of VGG19, which in their Caffe model are the rectified outputs, i.e.
    relu1_1 .. relu5_1 here. The network is cut after the last layer asked for.

    Args:
        arch: torchvision's VGG16 or VGG19 (without batch norm).
        layers: the layers returned, in this order.
        weights: "imagenet" (torchvision's IMAGENET1K_V1), or "random": a seeded random initialisation, for tests
            only (no download; its features mean nothing).
        weights_file: a local copy of torchvision's ImageNet weights file (else `LIT_GAN_VGG_WEIGHTS`, then the
            torch.hub cache, then a download).
    """

    def __init__(
        self,
        arch: VGGArch,
        layers: list[str],
        weights: VGGWeightsName = "imagenet",
        weights_file: str | None = None,
    ) -> None:
        super().__init__()
        names = layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise ValueError(f"unknown {arch} layers {unknown or layers}; valid names: {', '.join(names)}")
        self.layers = list(layers)
        self.indices = [names.index(name) for name in layers]
        with torch.random.fork_rng(devices=[]):  # "random": the same network for every seed of the run
            torch.manual_seed(RANDOM_SEED)
            self.features = make_layers(cfgs[_ARCHS[arch][0]])[: max(self.indices) + 1]
        if weights == "imagenet":
            self._load(find_weights(arch, weights_file), arch)
        elif weights != "random":
            raise ValueError(f"VGG weights must be 'imagenet' or 'random', got {weights!r}")
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False  # a conv output asked for must not be rectified in place by its ReLU
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _load(self, path: Path, arch: VGGArch) -> None:
        """Load the `features.*` tensors of torchvision's `arch` weights file `path` that the cut network has."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            kept = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
            self.features.load_state_dict({k: v for k, v in kept.items() if int(k.split(".")[0]) < len(self.features)})
        except Exception as err:  # not a state dict, another network's, a truncated file
            url = _ARCHS[arch][1].url
            raise VGGWeightsError(f"{path} is not torchvision's {arch} weights file ({url}): {err}") from err

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)  # always frozen (no dropout or batch norm, but say so)

    def forward(self, images: Tensor) -> list[Tensor]:
        """The layers' outputs [(B, C_l, H_l, W_l)] of `images` (B, 3, H, W) in [-1, 1], on their device/dtype."""
        if self.mean.device != images.device or self.mean.dtype != images.dtype:
            self.to(images)
        x = ((images + 1) / 2 - self.mean) / self.std  # ImageNet-normalized [0, 1]
        wanted, found = set(self.indices), {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                found[index] = x
        return [found[index] for index in self.indices]


def frozen(network: nn.Module) -> tuple[nn.Module]:
    """`network` in a tuple: an attribute holding it is outside the owner's module tree, so the network is in no
    state dict, checkpoint, EMA copy, `parameters()` (DDP sync, optimizers) or `.to()` of the owner."""
    return (network,)
