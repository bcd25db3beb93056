"""Reading images (`lit_gan.data.images`, `lit_gan.data.convert`): every common mode becomes 8-bit RGB."""

import numpy as np
import pytest
from PIL import Image

from lit_gan.data.images import list_images, split_pair
from lit_gan.image_io import ImageReadError, find_files, read_rgb, to_8bit


def _read(tmp_path, img: Image.Image, name: str = "img.png", **save) -> np.ndarray:
    path = tmp_path / name
    img.save(path, **save)
    out = read_rgb(path)
    assert out.mode == "RGB"
    return np.asarray(out).astype(int)


@pytest.mark.parametrize("mode", ["L", "1", "P"])
def test_grayscale_bilevel_and_palette_images_become_rgb(tmp_path, mode):
    rgb = Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]], [[255, 255, 255], [0, 0, 0]]], np.uint8))
    out = _read(tmp_path, rgb.convert(mode))
    assert out.shape == (2, 2, 3) and (out[0, 0] == 0).all() and (out[0, 1] == 255).all()


def test_transparent_pixels_become_white_not_black(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[:2, :, 3] = 200, 255  # red; top half opaque, bottom half fully transparent
    out = _read(tmp_path, Image.fromarray(rgba, "RGBA"))
    assert (out[:2] == (200, 0, 0)).all() and (out[2:] == 255).all()
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert (_read(tmp_path, la, "la.png")[2:] == 255).all()


def test_palette_transparency_becomes_white(tmp_path):
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.info["transparency"] = 1
    assert (_read(tmp_path, img, transparency=1) == 255).all()


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16_bit_gradient_stays_a_gradient(tmp_path, ext):
    ramp = (np.arange(64) * 1040).astype(np.uint16).reshape(1, 64).repeat(4, 0)  # 0 .. 65520
    out = _read(tmp_path, Image.fromarray(ramp), f"deep.{ext}")[0, :, 0]
    assert out[0] == 0 and out[-1] == 255
    assert np.all(np.diff(out) >= 0) and len(np.unique(out)) > 50  # not saturated to white
    np.testing.assert_allclose(out, ramp[0] / 257, atol=1)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", [0, 32896, 65535], [0, 128, 255]),
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),
        ("I", [-10, 0, 10], [0, 128, 255]),
    ],
)
def test_wide_modes_scale_by_their_range(mode, values, expected):
    img = Image.fromarray(np.array([values], np.float32 if mode == "F" else np.int32), mode)
    assert np.asarray(to_8bit(img))[0].tolist() == expected


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    out = _read(tmp_path, cmyk, "cmyk.jpg", quality=95)
    assert np.abs(out - (255, 0, 0)).max() < 12


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((10, 20, 3), np.uint8))  # 20 wide, 10 high
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert read_rgb(path).size == (10, 20)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"plain text", "cannot identify image file"), (b"\x89PNG\r\n\x1a\n garbage", "Truncated")],
)
def test_unreadable_files_name_the_file_and_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_rgb(path)
    assert str(path) in str(info.value) and "Remove or replace" in str(info.value)


def test_hidden_and_junk_files_are_left_out(tmp_path):
    for name in ("a.png", "sub/b.JPG", "._a.png", ".ipynb_checkpoints/c.png", "Thumbs.db", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    images, others = find_files(tmp_path)
    assert images == [tmp_path / "a.png", tmp_path / "sub/b.JPG"] and others == [tmp_path / "notes.txt"]
    assert list_images(tmp_path) == images


def test_split_pair_halves_an_odd_width():
    img = Image.fromarray(np.arange(2 * 7 * 3, dtype=np.uint8).reshape(2, 7, 3))
    a, b = split_pair(img)
    assert a.size == b.size == (3, 2)
    assert np.array_equal(np.asarray(b), np.asarray(img)[:, 3:6])
