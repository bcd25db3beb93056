"""Image shapes the networks accept (`lit_gan.networks.shapes`): size checks, padding to a multiple and cropping
the outputs back."""

import pytest
import torch
import torch.nn.functional as F

from lit_gan.networks.shapes import check_size_multiple, crop_padding, pad_to_multiple


@pytest.mark.parametrize(("height", "width"), [(37, 53), (300, 200), (32, 32), (1, 7), (5, 1), (3, 70)])
@pytest.mark.parametrize("multiple", [4, 32])
def test_padding_reaches_the_multiple_and_crops_back_exactly(height, width, multiple):
    x = torch.rand(3, height, width)
    padded, padding = pad_to_multiple(x, multiple)
    assert padded.shape[1] % multiple == 0 and padded.shape[2] % multiple == 0
    assert padded.shape[1] - height < multiple and padded.shape[2] - width < multiple
    assert torch.equal(crop_padding(padded[None], torch.tensor([padding]))[0], x)


def test_small_padding_is_a_reflection():
    x = torch.rand(3, 37, 53)
    padded, padding = pad_to_multiple(x, 4)
    assert padding == (1, 2, 1, 2)
    assert torch.equal(padded, F.pad(x[None], padding, mode="reflect")[0])


def test_an_image_of_the_multiple_is_left_as_it_is():
    x = torch.rand(3, 8, 12)
    padded, padding = pad_to_multiple(x, 4)
    assert padding == (0, 0, 0, 0) and torch.equal(padded, x)


def test_crop_padding_without_padding_or_images_returns_them_unchanged():
    images = torch.rand(2, 3, 8, 8)
    assert crop_padding(images, None) is images
    empty = torch.rand(0, 3, 8, 8)
    assert crop_padding(empty, torch.zeros(0, 4, dtype=torch.long)) is empty


def test_crop_padding_refuses_a_batch_of_several_sizes():
    padding = torch.tensor([[1, 2, 1, 2], [0, 0, 0, 0]])
    with pytest.raises(ValueError, match="must share a size"):
        crop_padding(torch.rand(2, 3, 40, 56), padding)


def test_size_check_names_the_network_and_the_size():
    check_size_multiple(torch.rand(1, 3, 32, 64), 32, "ResnetGenerator")
    with pytest.raises(ValueError, match="ResnetGenerator needs height and width that are multiples of 4, got 6x8"):
        check_size_multiple(torch.rand(1, 3, 6, 8), 4, "ResnetGenerator")
