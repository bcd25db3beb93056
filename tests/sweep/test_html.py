"""`compare`'s HTML page, its parts on hand-made inputs (the whole page from real runs: tests/test_dashboards.py)."""

import base64
import io
from pathlib import Path

from PIL import Image

from lit_gan.sweep.html import best_step, data_uri, direction_table


def saved_table(folder: Path, inputs: list[int]) -> dict:
    """A saved translations table (as the translations callback writes it) whose inputs have the grey levels
    `inputs`."""
    folder.mkdir(parents=True)
    rows = []
    for i, level in enumerate(inputs):
        for column, value in (("input", level), ("translation", 255 - level)):
            Image.new("RGB", (4, 4), (value,) * 3).save(folder / f"AtoB_{i}_{column}.png")
        rows.append({"image": i, "input": f"AtoB_{i}_input.png", "translation": f"AtoB_{i}_translation.png"})
    return {"images": ["input", "translation"], "rows": rows, "folder": folder}


def test_inputs_are_one_column_when_the_runs_share_them_else_in_each_runs_column(tmp_path):
    a, b, c = (saved_table(tmp_path / n, levels) for n, levels in (("a", [0, 9]), ("b", [0, 9]), ("c", [5, 9])))
    shared = direction_table([("a", 4, a), ("b", 6, b)])
    assert shared.count("<th>input</th>") == 1 and shared.count(">input</figcaption>") == 2  # a row per image
    separate = direction_table([("a", 4, a), ("c", 6, c)])
    assert "<th>input</th>" not in separate and separate.count(">input</figcaption>") == 4


def test_the_best_step_is_the_lowest_fid_and_the_highest_ssim():
    history = [{"trainer/global_step": s, "val/fid": f, "val/ssim": m} for s, f, m in [(1, 9, 0.5), (3, 4, 0.2)]]
    assert best_step(history, "val/fid") == 3 and best_step(history, "val/ssim") == 1
    assert best_step(history, "val/lpips") is None


def test_large_images_are_scaled_down_on_the_page_and_plots_are_kept(tmp_path):
    Image.new("RGB", (2000, 100), "red").save(tmp_path / "grid.png")
    for max_side, width in ((1024, 1024), (None, 2000)):
        data = data_uri(tmp_path / "grid.png", max_side).removeprefix("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(data))).width == width
