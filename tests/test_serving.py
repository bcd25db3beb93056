"""What the app serves (`lit_gan.serving`, no Gradio): runs found and labelled, models loaded weights-only and kept,
translations equal to predict's pixels, strength, styles, EMA/raw, size and photo checks, the busy gate."""

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lit_gan.journal import RunJournal
from lit_gan.predict import stylize
from lit_gan.runs import CheckpointRefused
from lit_gan.serving import (
    Busy,
    Gate,
    Models,
    ServingError,
    StyleRequest,
    find_choices,
    open_photo,
    resize_long_side,
    step_of,
)
from tests.helpers import write_images, write_problem_images
from tests.test_checkpoint_safety import evil_checkpoint


def pixels(image) -> np.ndarray:
    return np.asarray(image if isinstance(image, Image.Image) else Image.open(image).convert("RGB")).astype(int)


def photos_of_every_kind(folder: Path) -> list[Path]:
    """RGB photos of two sizes, a grayscale, a transparent, a 16-bit and an EXIF-rotated one."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    files = {
        "wide.png": Image.fromarray(rng.integers(0, 255, (36, 52, 3), dtype=np.uint8)),
        "square.png": Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)),
        "gray.png": Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)),
        "alpha.png": Image.fromarray(rng.integers(0, 255, (40, 40, 4), dtype=np.uint8)),
        "deep.png": Image.fromarray((np.arange(40 * 44).reshape(40, 44) * 30).astype(np.uint16)),
    }
    for name, image in files.items():
        image.save(folder / name)
    rotated = Image.fromarray(rng.integers(0, 255, (30, 44, 3), dtype=np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    rotated.save(folder / "rotated.jpg", exif=exif, quality=95)
    return sorted(folder.iterdir())


def test_the_app_translates_every_kind_of_photo_as_predict_does(trained_checkpoint, tmp_path):
    checkpoint = trained_checkpoint("cyclegan")
    photos = photos_of_every_kind(tmp_path / "photos")
    model = Models("cpu").get(checkpoint)
    assert model.directions == ["AtoB", "BtoA"] and model.sources == {"AtoB": "A", "BtoA": "B"}
    for direction, domain in model.sources.items():
        outputs = model.translate([open_photo(p) for p in photos], direction, batch_size=2)
        written = stylize(checkpoint, tmp_path / "photos", tmp_path / direction, domain=domain).written
        assert len(written) == len(photos)
        for photo, output in zip(photos, outputs):
            expected = pixels(tmp_path / direction / photo.name)
            if photo.suffix == ".jpg":  # predict writes a JPEG's translation as JPEG; compare with its own encoding
                output.save(tmp_path / "app.jpg", quality=95)
                output = Image.open(tmp_path / "app.jpg")
            assert pixels(output).shape == expected.shape, photo.name
            assert np.array_equal(pixels(output), expected), photo.name


def test_strength_blends_the_photo_with_its_translation_monotonically(trained_checkpoint, tmp_path):
    model = Models("cpu").get(trained_checkpoint("cyclegan"))
    (photo,) = write_images(tmp_path, 1, size=40)
    image = open_photo(photo)
    strengths = [0.0, 0.25, 0.5, 0.75, 1.0]
    outputs = [pixels(model.translate([image], "AtoB", strength=s)[0]) for s in strengths]
    assert np.array_equal(outputs[0], pixels(image))  # strength 0: the photo itself
    distances = [np.abs(out - pixels(image)).mean() for out in outputs]
    assert all(a < b for a, b in zip(distances, distances[1:])), distances
    half = (pixels(image) + outputs[-1]) / 2  # halfway, up to rounding of the 8-bit output
    assert np.abs(outputs[2] - half).max() <= 1
    with pytest.raises(ServingError, match="strength must be within 0..1"):
        model.translate([image], "AtoB", strength=1.5)


@pytest.mark.slow  # trains or exports a model of its own
def test_the_raw_generator_differs_from_the_ema_one_where_the_model_keeps_an_ema(trained_checkpoint, tmp_path):
    (photo,) = write_images(tmp_path, 1, size=40)
    image = open_photo(photo)
    model = Models("cpu").get(trained_checkpoint("cyclegan", "--model.ema_decay=0.5"))
    assert model.has_ema
    ema, raw = (pixels(model.translate([image], "AtoB", ema=e)[0]) for e in (True, False))
    assert not np.array_equal(ema, raw)
    G = model.module.generators["AtoB"]  # the raw output is the trained generator's
    from lit_gan.data.predict import to_model_input

    with torch.no_grad():
        expected = ((G(to_model_input(image)[None])[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0)
    assert np.array_equal(raw, expected.numpy().astype(int))
    assert not Models("cpu").get(trained_checkpoint("cyclegan")).has_ema


@pytest.mark.slow  # trains or exports a model of its own
def test_a_multi_style_model_applies_seeds_references_stored_styles_and_blends_as_predict_does(
    trained_checkpoint, tmp_path
):
    from lit_gan.cli import main
    from tests.test_styles import predict

    checkpoint = trained_checkpoint("starganv2")
    for name, seed in (("a", 0), ("b", 1)):
        images = write_images(tmp_path / name, 3, size=40, seed=seed)
        with pytest.raises(SystemExit):
            main(["style", "add", name, f"--ckpt={checkpoint}", f"--images={images[0].parent}"])
    photos = write_images(tmp_path / "photos", 2, size=32, seed=9)
    (reference,) = write_images(tmp_path / "reference", 1, size=48, seed=4)
    model = Models("cpu").get(checkpoint)
    assert model.styles and model.directions == [f"to_{d}" for d in model.domains]
    night = "to_night"
    cases = [  # (direction, style, strength, predict's arguments for the same)
        (night, StyleRequest(seed=3), 1.0, ["--target=night", "--model.predict_seed=3"]),
        (
            night,
            StyleRequest(reference=str(reference)),
            0.5,
            ["--target=night", f"--style_image={reference}", "--strength=0.5"],
        ),  # fmt: skip
        (night, StyleRequest(style="a"), 1.0, ["--style=a"]),
        (night, StyleRequest(style="a:0.25,b:0.75"), 0.75, ["--style", "a:0.25,b:0.75", "--strength=0.75"]),
    ]
    for i, (direction, style, strength, extra) in enumerate(cases):
        outputs = model.translate([open_photo(p) for p in photos], direction, strength=strength, style=style)
        files = predict(checkpoint, tmp_path / f"case{i}", tmp_path / "photos", *extra)
        assert len(files) == len(photos)
        for file, output in zip(files, outputs):
            assert np.array_equal(pixels(output), pixels(file)), extra
    assert model.module.predict_style is None and model.module.predict_strength == 1.0  # restored after each


def test_models_are_loaded_once_and_crafted_checkpoints_refused(trained_checkpoint, tmp_path):
    models = Models("cpu", size=1)
    checkpoint = trained_checkpoint("cyclegan")
    first = models.get(checkpoint)
    assert models.get(checkpoint) is first
    evil = evil_checkpoint(tmp_path / "evil.ckpt", tmp_path / "marker")
    with pytest.raises(CheckpointRefused, match=r"evil.ckpt refused: it holds objects that would run code"):
        models.get(evil)
    assert not (tmp_path / "marker").exists()
    dcgan = trained_checkpoint("dcgan")
    with pytest.raises(ServingError, match="generates images from noise"):
        models.get(dcgan)
    assert models.get(checkpoint) is first  # a failed load evicts nothing


@pytest.mark.slow  # trains or exports a model of its own
def test_an_exported_generator_is_served_with_its_size_multiple(trained_checkpoint, tmp_path):
    from lit_gan.export import export_generator

    checkpoint = trained_checkpoint("cyclegan")
    export_generator(checkpoint, tmp_path / "export", direction="AtoB", formats=["pt2"])
    exported = Models("cpu").get(tmp_path / "export" / "AtoB.pt2")
    served = Models("cpu").get(checkpoint)
    assert exported.directions == ["AtoB"] and exported.multiple == served.multiple > 1
    image = open_photo(write_images(tmp_path, 1, size=42)[0])  # not a multiple: padded and cropped back
    a, b = pixels(exported.translate([image], "AtoB")[0]), pixels(served.translate([image], "AtoB")[0])
    assert a.shape == b.shape == (42, 42, 3) and np.abs(a - b).max() <= 1


def write_run(runs: Path, run_id: str, name: str, fids: dict[int, float], age: float) -> Path:
    folder = runs / run_id
    (folder / "checkpoints").mkdir(parents=True)
    config = {"model": {"class_path": "lit_gan.models.CycleGAN"},
              "trainer": {"logger": {"init_args": {"name": name}}}}  # fmt: skip
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    journal = RunJournal(folder / "checkpoints" / "journal.jsonl", folder)
    for step, fid in fids.items():
        journal.append(step, {"val/fid": fid, "val/kid_mean": fid / 1000})
        (folder / "checkpoints" / f"best-step{step:07d}.ckpt").write_bytes(b"")
    journal.close()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    for f in (folder / "checkpoints").iterdir():
        os.utime(f, (time.time() - age, time.time() - age))
    return folder


def test_runs_are_listed_newest_first_with_their_best_metrics_and_checkpoints(tmp_path):
    runs = tmp_path / "runs" / "lit_gan"
    write_run(runs, "old1", "first", {100: 80.0}, age=100)
    write_run(runs, "new2", "second", {100: 50.0, 200: 40.0, 300: 45.0}, age=10)
    choices = find_choices([], runs_folder=runs)
    assert [c.path.name for c in choices] == ["new2", "old1"]
    second = choices[0]
    assert second.label == "second · CycleGAN · new2 · val/fid 40"
    assert second.metrics == {"val/fid": (40.0, 200), "val/kid_mean": (0.04, 200)}
    assert list(second.checkpoints)[:2] == ["best (step 200)", "last"]
    assert second.checkpoints["best (step 200)"].name == "best-step0000200.ckpt"
    assert "val/fid 40 (step 200)" in second.describe()
    assert [c.path.name for c in find_choices([runs / "old1", runs / "new2" / "checkpoints" / "last.ckpt"])] == [
        "old1", "last.ckpt"]  # fmt: skip
    assert step_of(Path("best-step0000200.ckpt")) == 200 and step_of(Path("last.ckpt")) is None


def test_paths_that_name_nothing_servable_are_refused_naming_them(tmp_path):
    with pytest.raises(ServingError, match=r"no runs in runs/lit_gan: train one"):
        find_choices([])
    with pytest.raises(ServingError, match=r"missing does not exist: give a run folder, a checkpoint or an exported"):
        find_choices([tmp_path / "missing"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ServingError, match=r"notes.txt is neither a checkpoint \(.ckpt\) nor an exported"):
        find_choices([tmp_path / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServingError, match=r"empty holds no run"):
        find_choices([tmp_path / "empty"])


def test_photos_are_checked_before_they_are_decoded(tmp_path):
    files = write_problem_images(tmp_path)
    with pytest.raises(ServingError, match=r"^text.png: not an image PIL can decode .*give a photo"):
        open_photo(files["text"])
    with pytest.raises(ServingError, match=r"^upload.jpg: empty file"):
        open_photo(files["empty"], "upload.jpg")
    with pytest.raises(ServingError, match=r"corrupt.jpg: .*give a photo"):
        open_photo(files["corrupt"])
    with pytest.raises(ServingError, match=r"40x40 px is over the limit of 0.001 megapixels \(--max_pixels\)"):
        open_photo(files["good"][0], max_pixels=1000)
    assert open_photo(files["deep"]).mode == "RGB"
    image = Image.new("RGB", (300, 200))
    assert resize_long_side(image, 150).size == (150, 100) and resize_long_side(image, 600).size == (600, 400)
    assert resize_long_side(image, None) is image


def test_the_gate_runs_one_request_at_a_time_and_refuses_beyond_its_queue():
    gate, started, release = Gate(queue=1), threading.Event(), threading.Event()
    order = []

    def hold():
        with gate.turn():
            started.set()
            release.wait(5)
            order.append("first")

    def wait():
        with gate.turn():
            order.append("second")

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    started.wait(5)
    threads.append(threading.Thread(target=wait))
    threads[1].start()
    for _ in range(100):
        if gate.waiting == 2:
            break
        time.sleep(0.01)
    with pytest.raises(Busy, match=r"^busy: 2 requests are being translated or waiting .*try again in a few"):
        with gate.turn():
            pass
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["first", "second"] and gate.waiting == 0
    with gate.turn():  # free again
        pass
