"""Generator loss terms on a frozen VGG's features (perceptual, style) and on pixels (total variation).

    model:
      init_args:
        generator_losses:
          - class_path: lit_gan.losses.PerceptualLoss
            init_args: {weight: 1.0, against: source}
          - class_path: lit_gan.losses.StyleLoss
            init_args: {weight: 1.0e+4, style_images: data/starry_night}
          - class_path: lit_gan.losses.TotalVariation
            init_args: {weight: 1.0e-4}

The VGG is built (and its weights found) when the term is, and kept outside the model's module tree: it is in no
checkpoint, EMA copy, optimizer or DDP gradient sync, and follows the images' device and dtype on first use.
"""

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import Tensor, nn

from lit_gan.image_io import find_files, read_rgb
from lit_gan.losses.inception_features import CONTENT_LAYERS, STYLE_LAYERS, InceptionFeatures
from lit_gan.losses.terms import GeneratorLoss, GeneratorStep
from lit_gan.losses.vgg import VGGFeatures, VGGWeightsName, frozen

JOHNSON_LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
"""Johnson et al. 2016's content layers of VGG16."""
GATYS_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
"""Gatys et al. 2016's style layers of VGG19 ("conv1_1" .. "conv5_1" in the paper: the rectified outputs)."""


def gram_matrix(features: Tensor) -> Tensor:
    """G = F F^T / (C * H * W) of features (B, C, H, W): (B, C, C)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


FeatureNetworkName = Literal["vgg16", "vgg19", "inception"]


def feature_network(
    network: FeatureNetworkName,
    layers: list[str] | None,
    vgg_layers: list[str],
    inception_layers: list[str],
    weights: VGGWeightsName,
    weights_file: str | None,
) -> nn.Module:
    """The frozen feature network of a term: a VGG (`weights` "imagenet" or "random") or the TF-Inception."""
    if network == "inception":
        if weights != "imagenet":
            raise ValueError("network 'inception' has only its genuine weights: leave `weights` at 'imagenet'")
        return InceptionFeatures(layers or inception_layers, weights_file=weights_file)
    return VGGFeatures(network, layers or vgg_layers, weights, weights_file)


class PerceptualLoss(GeneratorLoss):
    """Content (perceptual) loss, Johnson et al. 2016: the distance between VGG features of the fakes and of
    `against`, averaged over `layers`.

    Args:
        weight: factor of the term in the generator's loss.
        network: the feature network: VGG16/VGG19 (torchvision's ImageNet weights), or "inception" (the FID
            network, genuine weights available offline; see `InceptionFeatures`).
        layers: the layers compared (see `VGGFeatures`, `InceptionFeatures`), averaged with equal weights; default
            Johnson's for VGG, Mixed_5d and Mixed_6e for Inception.
        against: "source": the images translated (content preservation, for unpaired models such as CycleGAN);
            "target": the real images (`GeneratorStep.real`: the fakes' targets in paired models such as pix2pix).
        distance: "l1" (mean absolute) or "l2" (mean squared) difference of the features.
        weights: "imagenet", or "random" for tests only (see `VGGFeatures`).
        weights_file: a local copy of torchvision's ImageNet weights file (see `VGGFeatures`).
    """

    name = "perceptual"

    def __init__(
        self,
        weight: float = 1.0,
        network: FeatureNetworkName = "vgg16",
        layers: list[str] | None = None,
        against: Literal["source", "target"] = "source",
        distance: Literal["l1", "l2"] = "l1",
        weights: VGGWeightsName = "imagenet",
        weights_file: str | None = None,
    ) -> None:
        super().__init__(weight)
        self.against, self.distance = against, distance
        self._vgg = frozen(feature_network(network, layers, JOHNSON_LAYERS, CONTENT_LAYERS, weights, weights_file))

    def forward(self, step: GeneratorStep) -> Tensor:
        target = step.source if self.against == "source" else step.real
        if target is None:
            raise ValueError(
                "PerceptualLoss: against='source' needs the images translated, but this model generates from noise "
                "(GeneratorStep.source is None): set init_args.against to 'target' or remove the term"
            )
        (vgg,) = self._vgg
        with torch.no_grad():
            target_features = vgg(target.detach())
        distance = F.l1_loss if self.distance == "l1" else F.mse_loss
        pairs = zip(vgg(step.fake), target_features, strict=True)
        return torch.stack([distance(f, t) for f, t in pairs]).mean()


class StyleLoss(GeneratorLoss):
    """Style loss, Gatys et al. 2016: the mean squared difference between the Gram matrices of the fakes' VGG
    features and of the style, averaged over `layers`.

    Each layer's Gram matrix is G = F F^T / (C * H * W) for features F of shape (C, H * W); each fake's Gram is
    compared with the style's mean Gram matrix.

    Args:
        weight: factor of the term in the generator's loss (Gram values are small: weights of 1e3 .. 1e5 are usual).
        network: the feature network: VGG16/VGG19, or "inception" (see `PerceptualLoss`).
        layers: the layers compared (see `VGGFeatures`, `InceptionFeatures`), averaged with equal weights; default
            Gatys' for VGG, Conv2d_2b_3x3, Conv2d_4a_3x3, Mixed_5d and Mixed_6e for Inception.
        style_images: a folder of style images (nested folders included): their mean Gram matrices, computed once
            at the size of the first fakes. Without it, the style is each batch of real target-domain images
            (`GeneratorStep.real`).
        weights: "imagenet", or "random" for tests only (see `VGGFeatures`).
        weights_file: a local copy of torchvision's ImageNet weights file (see `VGGFeatures`).
    """

    name = "style"

    def __init__(
        self,
        weight: float = 1.0,
        network: FeatureNetworkName = "vgg19",
        layers: list[str] | None = None,
        style_images: str | None = None,
        weights: VGGWeightsName = "imagenet",
        weights_file: str | None = None,
    ) -> None:
        super().__init__(weight)
        self.style_paths = _style_paths(style_images) if style_images is not None else None
        self._vgg = frozen(feature_network(network, layers, GATYS_LAYERS, STYLE_LAYERS, weights, weights_file))
        self._style_grams: list[Tensor] | None = None  # the style images' mean Grams [(1, C, C)], on first use

    def grams(self, images: Tensor) -> list[Tensor]:
        """The Gram matrices [(B, C_l, C_l)] of `images` (B, 3, H, W) in [-1, 1], one per layer."""
        (vgg,) = self._vgg
        return [gram_matrix(features) for features in vgg(images)]

    def style_grams(self, like: Tensor) -> list[Tensor]:
        """The style's mean Grams [(1, C, C)]: of `style_images` at the size of `like` (cached), else of `like`."""
        if self.style_paths is None:
            with torch.no_grad():
                return [g.mean(0, keepdim=True) for g in self.grams(like.detach())]
        if self._style_grams is None:
            size = list(like.shape[-2:])
            images = [TF.to_tensor(TF.resize(read_rgb(path), size, antialias=True)) for path in self.style_paths]
            batch = torch.stack(images).to(like) * 2 - 1  # (N, 3, H, W) in [-1, 1]
            with torch.no_grad():
                self._style_grams = [g.mean(0, keepdim=True) for g in self.grams(batch)]
        return [g.to(like) for g in self._style_grams]

    def forward(self, step: GeneratorStep) -> Tensor:
        pairs = zip(self.grams(step.fake), self.style_grams(step.real), strict=True)
        return torch.stack([F.mse_loss(g, s.expand_as(g)) for g, s in pairs]).mean()


def _style_paths(folder: str) -> list[Path]:
    """The image files under `folder`; a FileNotFoundError naming it when it is missing or holds no image."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"StyleLoss: style_images folder {folder} does not exist")
    paths, _ = find_files(folder)
    if not paths:
        raise FileNotFoundError(f"StyleLoss: style_images folder {folder} holds no image file")
    return paths


class TotalVariation(GeneratorLoss):
    """Anisotropic total variation of the fakes: mean |x[h+1, w] - x[h, w]| + mean |x[h, w+1] - x[h, w]| (over
    batch, channels and positions), which favours smooth images.

    Args:
        weight: factor of the term in the generator's loss.
    """

    name = "tv"

    def forward(self, step: GeneratorStep) -> Tensor:
        x = step.fake  # (B, C, H, W)
        vertical = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean()
        horizontal = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
        return vertical + horizontal
