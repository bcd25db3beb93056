"""Stylizing images with a trained checkpoint, end to end: `python -m lit_gan predict` and `lit_gan.predict.stylize`."""

import logging
import shutil

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from lit_gan.callbacks import PredictionWriter
from lit_gan.cli import CheckpointNotFound, main
from lit_gan.data import StyleDataModule
from lit_gan.data.predict import to_model_input
from lit_gan.image_io import read_image
from lit_gan.models import DCGAN, CycleGAN, Pix2Pix
from lit_gan.networks import DCGANDiscriminator, DCGANGenerator, PatchGANDiscriminator, UnetGenerator
from lit_gan.networks.shapes import crop_padding, pad_to_multiple
from lit_gan.predict import stylize
from tests.data.test_predict import mixed_folder, save_image
from tests.helpers import fit, make_unaligned, tiny_args

OUTPUT_SIZES = {"a.png": (53, 37), "b.jpg": (200, 300), "d.png": (53, 37), "sub/c.png": (32, 32)}  # (width, height)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The run folder of a tiny CycleGAN trained for 2 steps by the CLI (without W&B and validation, for speed) on a
    data folder that is deleted afterwards, as when a run's config is used on another machine."""
    tmp = tmp_path_factory.mktemp("run")
    root = make_unaligned(tmp / "data", n=2, size=40)
    data = [f"--data.root={root}", "--data.load_size=36", "--data.crop_size=32", "--data.num_workers=0"]
    quick = ["--trainer.logger=false", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0"]
    quick += ["--metrics.enabled=false", "--best_checkpoint.save_top_k=0"]
    fit(tiny_args("--trainer.max_steps=2", f"--trainer.default_root_dir={tmp / 'run'}", *quick, data=data))
    shutil.rmtree(root)
    return tmp / "run"


def predict_args(run, *extra: str) -> list[str]:
    return ["predict", f"--config={run / 'config.yaml'}", f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *extra]


def output_sizes(folder) -> dict[str, tuple[int, int]]:
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".txt"]
    return {p.relative_to(folder).as_posix(): Image.open(p).size for p in files}


def test_cli_writes_a_folder_of_mixed_sizes_at_their_sizes_and_reports_unreadable_files(
    run, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(logging.getLogger("pytorch_lightning"), "propagate", True)  # the summary, to caplog
    images, out = mixed_folder(tmp_path / "in"), tmp_path / "out"
    wandb = ["--trainer.logger=lit_gan.loggers.WandbLogger", f"--trainer.logger.save_dir={tmp_path / 'runs'}"]
    args = [f"--data.predict.path={images}", "--data.batch_size=2", f"--predict_writer.output_dir={out}", *wandb]
    with caplog.at_level(logging.INFO):
        main(predict_args(run, *args))

    assert output_sizes(out) == OUTPUT_SIZES
    assert f"predict: 4 image(s) written to {out}, 2 skipped" in caplog.text
    assert "  corrupt.png: not an image PIL can decode" in caplog.text
    assert "  truncated.jpg: image file is truncated" in caplog.text
    skipped = (out / "skipped.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in skipped] == ["corrupt.png", "truncated.jpg"]
    # The run's data folder is gone, and predict starts no run: no run folder, no W&B run, nothing in the cwd.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "wandb_dir"]
    assert not any((tmp_path / "wandb_dir").iterdir())


def expected_translation(generator: torch.nn.Module, path, multiple: int) -> np.ndarray:
    """The generator on the padded image, cropped and quantized: what the prediction must hold exactly."""
    padded, padding = pad_to_multiple(to_model_input(read_image(path)), multiple)
    with torch.no_grad():
        out = crop_padding(generator(padded[None]), torch.tensor([padding]))[0]  # (3, H, W)
    return ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def test_both_directions_equal_the_generator_on_the_padded_image_cropped(run, tmp_path):
    model = CycleGAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt").eval()
    image = save_image(tmp_path / "in" / "x.png", 37, 53)
    outputs = {}
    for domain, generator in (("A", model.generators["AtoB"]), ("B", model.generators["BtoA"])):
        writer = stylize(model, image, tmp_path / domain, domain=domain, accelerator="cpu")
        assert writer.written == [tmp_path / domain / "x.png"] and writer.skipped == []
        outputs[domain] = np.asarray(Image.open(writer.written[0]))
        assert np.array_equal(outputs[domain], expected_translation(generator, image, model.size_multiple))
    assert not np.array_equal(outputs["A"], outputs["B"])


def test_python_path_from_a_checkpoint_file(run, tmp_path):
    writer = stylize(run / "checkpoints" / "last.ckpt", mixed_folder(tmp_path / "in"), tmp_path / "out", domain="B")
    assert output_sizes(tmp_path / "out") == OUTPUT_SIZES
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in writer.written) == sorted(OUTPUT_SIZES)
    assert [name for name, _ in writer.skipped] == ["corrupt.png", "truncated.jpg"]


class BatchShapes(pl.Callback):
    def __init__(self) -> None:
        self.shapes = []

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.shapes.append((tuple(batch["A"].shape) if "A" in batch else None, len(batch["failed"])))


def test_only_images_of_one_size_share_a_batch(run, tmp_path):
    model = CycleGAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    data = StyleDataModule(predict={"path": str(mixed_folder(tmp_path / "in"))}, batch_size=2, num_workers=0)
    shapes = BatchShapes()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.callbacks += [shapes, PredictionWriter(str(tmp_path / "out"))]
    trainer.predict(model, datamodule=data, return_predictions=False)
    # a.png and d.png (37x53); b.jpg and truncated.jpg (300x200 headers, one unreadable); corrupt.png; sub/c.png
    assert shapes.shapes == [((2, 3, 40, 56), 0), ((1, 3, 300, 200), 1), (None, 1), ((1, 3, 32, 32), 0)]
    assert output_sizes(tmp_path / "out") == OUTPUT_SIZES


def tiny_pix2pix() -> Pix2Pix:
    generator = UnetGenerator(num_downs=5, ngf=4)  # size multiple 32
    return Pix2Pix(generator, PatchGANDiscriminator(in_channels=6, ndf=4, n_layers=2, norm="batch"))


def test_pix2pix_translates_its_source_domain_and_refuses_the_other(tmp_path):
    images = tmp_path / "in"
    for name, (height, width) in {"big.png": (37, 53), "tiny.png": (5, 3), "exact.png": (32, 32)}.items():
        save_image(images / name, height, width)
    with pytest.raises(ValueError, match=r"data.predict.domain B: Pix2Pix translates domain A images \(AtoB\)"):
        stylize(tiny_pix2pix(), images, tmp_path / "out", domain="B")
    assert not (tmp_path / "out").exists()  # refused before any work
    stylize(tiny_pix2pix(), images, tmp_path / "out", domain="A")  # padded to 64x64 and 32x32, cropped back
    assert output_sizes(tmp_path / "out") == {"big.png": (53, 37), "tiny.png": (3, 5), "exact.png": (32, 32)}


def test_dcgan_has_nothing_to_translate(tmp_path):
    model = DCGAN(DCGANGenerator(nz=8, ngf=4, image_size=32), DCGANDiscriminator(ndf=4, image_size=32))
    with pytest.raises(ValueError, match="DCGAN generates images from noise"):
        stylize(model, save_image(tmp_path / "x.png", 8, 8), tmp_path / "out")


def test_cli_errors_name_the_missing_folder_and_the_missing_checkpoint(run, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"data.predict.path: {missing} does not exist"):
        main(predict_args(run, f"--data.predict.path={missing}"))
    images = mixed_folder(tmp_path / "in")
    with pytest.raises(CheckpointNotFound, match="predict needs --ckpt_path"):
        main(["predict", f"--config={run / 'config.yaml'}", f"--data.predict.path={images}"])
    assert not (tmp_path / "predictions").exists()


def test_cli_without_predict_path_translates_the_held_out_images(run, tmp_path):
    synthetic = ["--data.root=null", "--data.name=synthetic", "--data.synthetic.train_size=2"]
    main(predict_args(run, *synthetic, "--data.synthetic.test_size=2", "--data.batch_size=2"))
    names = ["AtoB/00000.png", "AtoB/00001.png", "BtoA/00000.png", "BtoA/00001.png"]
    assert output_sizes(tmp_path / "predictions") == dict.fromkeys(names, (32, 32))
