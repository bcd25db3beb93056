"""The prediction writer: output names and formats, pixel values, the report of skipped files."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.callbacks import PredictionWriter
from lit_gan.callbacks.predictions import output_path


@pytest.mark.parametrize(
    ("name", "expected", "image_format"),
    [
        ("a.png", "a.png", "PNG"),
        ("sub/b.JPG", "sub/b.JPG", "JPEG"),
        ("c.tiff", "c.tiff", "TIFF"),
        ("d.webp", "d.webp", "WEBP"),
        ("synthetic/testA/00001", "synthetic/testA/00001.png", "PNG"),  # no extension
        ("e.psd", "e.psd.png", "PNG"),  # PIL reads PSD but cannot write it
    ],
)
def test_outputs_keep_the_name_and_format_where_pil_can_write_it(tmp_path, name, expected, image_format):
    assert output_path(tmp_path, name) == (tmp_path / expected, image_format)


def test_png_outputs_hold_the_exact_pixels(tmp_path):
    writer = PredictionWriter(str(tmp_path / "out"))
    pixels = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    path = writer.save(pixels.float() / 127.5 - 1, "sub/x.png")  # (3, 5, 7) in [-1, 1]
    assert path == tmp_path / "out" / "sub" / "x.png"
    assert np.array_equal(np.asarray(Image.open(path)), pixels.permute(1, 2, 0).numpy())
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, no leftovers


def test_jpeg_outputs_use_the_quality_and_one_channel_outputs_are_grayscale(tmp_path):
    image = torch.rand(3, 64, 48) * 2 - 1
    sizes = [PredictionWriter(str(tmp_path / str(q)), quality=q).save(image, "x.jpg").stat().st_size for q in (50, 95)]
    assert sizes[0] < sizes[1]
    gray = PredictionWriter(str(tmp_path)).save(image[:1], "g.png")
    assert Image.open(gray).mode == "L" and Image.open(gray).size == (48, 64)


def test_report_lists_skipped_files_and_writes_skipped_txt(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("pytorch_lightning"), "propagate", True)  # to caplog
    writer = PredictionWriter(str(tmp_path))
    writer.written = [tmp_path / "a.png"]
    writer.skipped = [("bad.png", "not an image"), ("sub/cut.jpg", "image file is truncated")]
    with caplog.at_level(logging.INFO):
        writer.report()
    assert f"predict: 1 image(s) written to {tmp_path}, 2 skipped" in caplog.text
    assert "  sub/cut.jpg: image file is truncated" in caplog.text
    assert (tmp_path / "skipped.txt").read_text() == "bad.png: not an image\nsub/cut.jpg: image file is truncated\n"
    writer.skipped = []
    writer.report()
    assert not (tmp_path / "skipped.txt").exists()  # no stale list from an earlier run


def test_quality_is_checked():
    with pytest.raises(ValueError, match="predict_writer.quality"):
        PredictionWriter(quality=0)
