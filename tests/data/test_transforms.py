"""Preprocessing (`lit_gan.data.transforms`): output sizes of each mode, and one crop and flip for aligned pairs."""

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.data.transforms import RoundToMultiple, ScaleWidth, UpscaleToAtLeast, build_transform


def _image(w: int, h: int, offset: int = 0) -> Image.Image:
    """An image whose pixels encode their position (and `offset`), so that crops and flips can be traced."""
    y, x = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([x % 256, y % 256, np.full_like(x, offset)], -1).astype(np.uint8))


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("size", [(80, 40), (40, 80), (20, 24)])
def test_cropping_modes_give_square_crops_of_any_image(preprocess, train, size):
    out = build_transform(preprocess, 48, 32, flip=True, train=train)(_image(*size))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert -1 <= out.min() and out.max() <= 1


def test_scale_width_keeps_the_aspect_ratio_with_a_minimum_height():
    assert ScaleWidth(48, 32).new_size(96, 128) == (48, 64)  # aspect kept
    assert ScaleWidth(48, 32).new_size(80, 40) == (48, 32)  # 48 x 24 would be too low for the crop
    assert ScaleWidth(48, 32).new_size(20, 40) == (48, 96)  # narrow images are scaled up


def test_upscale_keeps_the_aspect_ratio_and_leaves_large_images():
    assert UpscaleToAtLeast(32).new_size(20, 24) == (32, 38)
    assert UpscaleToAtLeast(32).new_size(40, 33) == (40, 33)


@pytest.mark.parametrize(
    ("multiple", "size", "expected"), [(4, (30, 50), (32, 48)), (16, (40, 70), (32, 64)), (16, (5, 5), (16, 16))]
)
def test_none_rounds_sizes_to_the_network_multiple(multiple, size, expected):
    assert RoundToMultiple(multiple).new_size(*size) == expected
    out = build_transform("none", 48, 32, flip=False, train=True, multiple=multiple)(_image(*size))
    assert out.shape == (3, expected[1], expected[0])


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width", "none"])
def test_pairs_get_the_same_crop_and_flip(preprocess):
    transform = build_transform(preprocess, 48, 32, flip=True, train=True)
    torch.manual_seed(0)
    flips = set()
    for _ in range(20):
        a, b = transform(_image(44, 40), _image(44, 40, offset=100))
        assert torch.equal(a[:2], b[:2])  # same positions
        assert torch.allclose(b[2] - a[2], torch.tensor(100 / 127.5), atol=0.02)
        flips.add(bool(a[0, 0, 0] > a[0, 0, -1]))  # x decreasing: flipped
    assert flips == {True, False}  # both happened, to both images alike
