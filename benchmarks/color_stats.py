"""Colour statistics of a trained translator against a style's held-out images: does the output have the style's
palette, not only a lower KID?

For each RGB channel: the mean and the standard deviation of the pixel values (in [0, 1]) of the translations, of the
source photos and of the held-out style images, and the 1-D Wasserstein distance between each one's distribution of
that channel's values and the style images' (the area between the two cumulative histograms, 256 bins): 0 when the
palettes match, up to 1. `distance` is its mean over the three channels. The translations are "closer to the style"
than the photos themselves when their distance is below the photos'.

    python benchmarks/color_stats.py CHECKPOINT SOURCE_FOLDER STYLE_FOLDER [--size 128] [--images 50]
"""

import argparse
import json
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import functional as TF

BINS = 256


def load_images(folder: Path, size: int, n: int) -> torch.Tensor:
    """The first `n` images of `folder` (sorted by name), resized to `size` x `size`: (N, 3, size, size) in [0, 1]."""
    from lit_gan.data.images import list_images

    paths = list_images(folder)[:n]
    if not paths:
        raise SystemExit(f"{folder}: no images")
    return torch.stack([TF.to_tensor(TF.resize(Image.open(p).convert("RGB"), [size, size])) for p in paths])


def channel_cdfs(images: torch.Tensor) -> torch.Tensor:
    """(3, BINS) cumulative histograms of each channel's values of (N, 3, H, W) images in [0, 1]."""
    values = images.permute(1, 0, 2, 3).flatten(1).clamp(0, 1)  # (3, N*H*W)
    hist = torch.stack([torch.histc(v, bins=BINS, min=0.0, max=1.0) for v in values])
    return (hist / hist.sum(1, keepdim=True)).cumsum(1)


def statistics(images: torch.Tensor, style_cdfs: torch.Tensor) -> dict:
    """Per-channel mean and std of `images`, and their Wasserstein-1 distance to the style's channels."""
    per_channel = images.permute(1, 0, 2, 3).flatten(1)  # (3, N*H*W)
    w1 = (channel_cdfs(images) - style_cdfs).abs().sum(1) / BINS  # (3,): the area between the two CDFs
    return {
        "mean": [round(float(x), 4) for x in per_channel.mean(1)],
        "std": [round(float(x), 4) for x in per_channel.std(1)],
        "w1": [round(float(x), 4) for x in w1],
        "distance": round(float(w1.mean()), 4),
    }


@torch.no_grad()
def translate(checkpoint: Path, photos: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
    """`photos` ((N, 3, H, W) in [0, 1]) translated by the checkpoint's inference generator, in [0, 1]."""
    from lit_gan.models.loading import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    out = torch.cat([model.generate(direction, batch * 2 - 1) for batch in photos.split(10)])
    return (out.clamp(-1, 1) + 1) / 2


def color_report(checkpoint: Path, source: Path, style: Path, size: int = 128, n: int = 50) -> dict:
    """{"translations": stats, "photos": stats, "style": stats}: see the module docstring."""
    photos, styles = load_images(source, size, n), load_images(style, size, n)
    style_cdfs = channel_cdfs(styles)
    return {
        "translations": statistics(translate(checkpoint, photos), style_cdfs),
        "photos": statistics(photos, style_cdfs),
        "style": statistics(styles, style_cdfs),
        "images": [len(photos), len(styles)],
        "size": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("source", type=Path, help="folder of photos to translate (e.g. testA)")
    parser.add_argument("style", type=Path, help="folder of held-out style images (e.g. testB)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(color_report(args.checkpoint, args.source, args.style, args.size, args.images), indent=2))


if __name__ == "__main__":
    main()
