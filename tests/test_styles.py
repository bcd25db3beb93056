"""The style bank (`lit_gan.styles`, `python -m lit_gan style`): stored styles made from images, applied by predict and
the exported generator, blended and at a strength; crafted files and other models' styles refused."""

import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.cli import main
from lit_gan.models import StarGANv2
from lit_gan.styles import (
    FORMAT,
    StyleError,
    StyleRefused,
    image_tensor,
    parse_blend,
    read_style,
    style_path,
    with_strength,
)
from tests.helpers import write_images


@pytest.fixture
def checkpoint(trained_checkpoint):
    return trained_checkpoint("starganv2")


def command(*args: str) -> int:
    """Run a function command as from Python; returns its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def cli_error(monkeypatch, capsys, *args: str) -> str:
    """Run `python -m lit_gan ARGS` as from the command line, expecting a user error: its stderr."""
    monkeypatch.setattr(sys, "argv", ["lit_gan", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def read_png(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).permute(2, 0, 1).int()


def as_uint8(image: torch.Tensor) -> torch.Tensor:
    return ((image.clamp(-1, 1) + 1) * 127.5).round().int()


def model_of(checkpoint) -> StarGANv2:
    return StarGANv2.load_from_checkpoint(checkpoint, weights_only=True).eval()


def add_style(checkpoint, tmp_path, name="mine", n=5, seed=0, *extra) -> list:
    folder = tmp_path / f"{name}_{n}_{seed}"
    images = write_images(folder, n, size=40, seed=seed)
    assert command("style", "add", name, f"--ckpt={checkpoint}", f"--images={folder}", *extra) == 0
    return images


def test_style_add_stores_the_ema_style_encoders_codes_of_the_images_with_the_model_identity(checkpoint, tmp_path):
    images = add_style(checkpoint, tmp_path, "mine", 5, 0, "--domain=night")
    style = read_style("styles/mine.pt")
    model = model_of(checkpoint)
    x = torch.cat([image_tensor(Image.open(p), 32) for p in images])
    with torch.no_grad():
        expected = model.translator("style_encoder")(x, torch.full((5,), model.domains.index("night")))
    torch.testing.assert_close(style.codes, expected)
    torch.testing.assert_close(style.code, expected.mean(0))
    assert style.domain == "night" and style.images == [p.name for p in images]
    assert style.thumbnails.dtype == torch.uint8 and style.thumbnails.shape == (5, 3, 32, 32)
    assert style.model["fingerprint"] == model.identity()["fingerprint"] and style.model["class"] == "StarGANv2"
    assert style.model["checkpoint"] == str(checkpoint) and style.model["step"] == 2
    assert os.path.getsize("styles/mine.pt") < 100_000  # small: codes and eight thumbnails

    with pytest.raises(StyleError, match=r"style 'mine' already exists .*--overwrite true"):
        add_style(checkpoint, tmp_path, "mine", 2, 1)
    add_style(checkpoint, tmp_path, "mine", 2, 1, "--overwrite=true")  # without --domain: the discriminator's choice
    assert len(read_style("styles/mine.pt").codes) == 2 and read_style("styles/mine.pt").domain in model.domains


def test_style_list_and_show(checkpoint, tmp_path, capsys):
    add_style(checkpoint, tmp_path, "mine", 3)
    (tmp_path / "styles" / "broken.pt").write_bytes(b"not a zip")
    capsys.readouterr()
    assert command("style", "list") == 0
    listed = capsys.readouterr().out
    assert "mine" in listed and "3 images" in listed and str(checkpoint) in listed
    assert "broken" in listed and "unusable" in listed

    photos = write_images(tmp_path / "photos", 2, size=48, seed=5)
    assert command("style", "show", "mine", f"--ckpt={checkpoint}", f"--photos={tmp_path / 'photos'}") == 0
    grid = Image.open("styles/mine.png")
    # a row of thumbnails, then a row per photo; columns: photo, the mean style, each image's code
    assert grid.size == (2 + (2 + 3) * 34, 2 + (1 + len(photos)) * 34)
    assert command("style", "show", "mine", f"--ckpt={checkpoint}", "--output=held_out.png") == 0
    assert Image.open("held_out.png").height == 2 + (1 + 2) * 34  # the model's own held-out photos (2 per style)


def predict(checkpoint, out, photos, *extra):
    run = checkpoint.parent.parent
    main(["predict", f"--config={run / 'config.yaml'}", f"--ckpt_path={checkpoint}", f"--data.predict.path={photos}",
          f"--predict_writer.output_dir={out}", *extra])  # fmt: skip
    return sorted(out.rglob("*.png"))


def test_predict_applies_a_stored_style_a_blend_and_a_strength(checkpoint, tmp_path):
    add_style(checkpoint, tmp_path, "a", 3, 0)
    add_style(checkpoint, tmp_path, "b", 3, 1)
    photos = write_images(tmp_path / "photos", 2, size=32, seed=9)
    model = model_of(checkpoint)
    G, E = model.translator("generator"), model.translator("style_encoder")
    x = torch.cat([image_tensor(Image.open(p), 32) for p in photos])
    a, b = read_style("styles/a.pt").code, read_style("styles/b.pt").code
    (reference,) = write_images(tmp_path / "reference", 1, size=48, seed=4)
    night = model.domains.index("night")
    with torch.no_grad():
        own = E(x, torch.zeros(2, dtype=torch.long))  # the first domain's head: the default source
        by_reference = model.reference_codes(night, image_tensor(Image.open(reference), 32))
        cases = {
            "style": (["--style=a"], G(x, a.expand(2, -1))),
            "blend": (["--style", "a:0.5,b:0.5"], G(x, ((a + b) / 2).expand(2, -1))),
            "strength0": (["--style=a", "--strength=0"], G(x, own)),  # the photos' own reconstruction
            "half": (["--style=a", "--strength=0.5", "--source=sketch"],
                     G(x, (E(x, torch.full((2,), 2)) + a) / 2)),
            "style_image": (["--target=night", f"--style_image={reference}", "--strength=0.5"],
                            G(x, (own + by_reference) / 2)),
        }  # fmt: skip
    for name, (extra, expected) in cases.items():
        files = predict(checkpoint, tmp_path / name, tmp_path / "photos", *extra)
        assert [f.name for f in files] == [p.name for p in photos]
        for file, image in zip(files, expected, strict=True):
            assert (read_png(file) - as_uint8(image)).abs().max() <= 1, name


def test_the_exported_generator_applies_stored_codes(checkpoint, tmp_path):
    from lit_gan.export import export_generator

    add_style(checkpoint, tmp_path, "mine", 3)
    photos = write_images(tmp_path / "photos", 2, size=32, seed=9)
    (file, *_) = predict(checkpoint, tmp_path / "out", tmp_path / "photos", "--style=mine")
    export_generator(checkpoint, tmp_path / "export", formats=["pt2"])
    generator = torch.export.load(tmp_path / "export" / "generator.pt2").module()
    x = image_tensor(Image.open(photos[0]), 32)
    with torch.no_grad():
        out = generator(x, read_style("styles/mine.pt").code[None])
    assert (read_png(file) - as_uint8(out[0])).abs().max() <= 1


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_a_crafted_style_file_is_refused_in_one_line(checkpoint, tmp_path, monkeypatch, capsys):
    (tmp_path / "styles").mkdir()
    torch.save({"format": FORMAT, "codes": torch.zeros(1, 8), "x": Payload()}, tmp_path / "styles" / "evil.pt")
    with pytest.raises(StyleRefused, match=r"style file styles/evil.pt refused: it holds objects that would run"):
        read_style("styles/evil.pt")
    photos = write_images(tmp_path / "photos", 1, size=32)
    run = checkpoint.parent.parent
    err = cli_error(monkeypatch, capsys, "predict", f"--config={run / 'config.yaml'}", f"--ckpt_path={checkpoint}",
                    f"--data.predict.path={photos[0]}", "--style=evil")  # fmt: skip
    assert err.count("\n") == 1 and err.startswith("error: style file styles/evil.pt refused")
    err = cli_error(monkeypatch, capsys, "style", "show", "evil", f"--ckpt={checkpoint}")
    assert err.count("\n") == 1 and "refused" in err
    assert not (tmp_path / "pwned.txt").exists()


def test_a_style_made_with_another_model_is_refused_naming_both(checkpoint, tmp_path, monkeypatch, capsys):
    add_style(checkpoint, tmp_path, "mine", 2)
    other = tmp_path / "other" / "checkpoints" / "last.ckpt"  # the same model one weight apart
    other.parent.mkdir(parents=True)
    state = torch.load(checkpoint, weights_only=True)
    key = next(k for k in state["state_dict"] if k.startswith("ema.generator") and k.endswith("weight"))
    state["state_dict"][key] = state["state_dict"][key] + 1e-3
    torch.save(state, other)
    (other.parent.parent / "config.yaml").write_text((checkpoint.parent.parent / "config.yaml").read_text())
    photos = write_images(tmp_path / "photos", 1, size=32)
    err = cli_error(monkeypatch, capsys, "predict", f"--config={other.parent.parent / 'config.yaml'}",
                    f"--ckpt_path={other}", f"--data.predict.path={photos[0]}", "--style=mine")  # fmt: skip
    mine, this = model_of(checkpoint).identity()["fingerprint"], model_of(other).identity()["fingerprint"]
    assert mine != this and err.count("\n") == 1
    assert f"made with the model of {checkpoint} (StarGANv2, step 2, fingerprint {mine})" in err
    assert f"not with this one, {other} (StarGANv2, step 2, fingerprint {this})" in err
    assert "style add mine --ckpt" in err


def test_style_requests_are_checked_before_any_work(trained_checkpoint, tmp_path):
    assert parse_blend("night") == [("night", 1.0)]
    assert parse_blend("a:3, b:1") == [("a", 0.75), ("b", 0.25)]
    for bad in ("a:0", "a:-1", "a:x", ":1", "a,"):
        with pytest.raises(StyleError, match="positive weights"):
            parse_blend(bad)
    assert style_path("night") == style_path("night", "styles") and str(style_path("x/y.pt")) == "x/y.pt"
    with pytest.raises(StyleError, match=r"style name 'a b': use letters"):
        style_path("a b")
    with pytest.raises(StyleError, match=r"style file styles/missing.pt not found: add it with"):
        StarGANv2(domains=("a", "b"), predict_style="missing", image_size=32, channels=4, max_conv_dim=16)
    with pytest.raises(ValueError, match=r"predict_style and model.predict_reference both given"):
        image = write_images(tmp_path / "ref", 1)[0]
        StarGANv2(domains=("a", "b"), predict_style="x", predict_reference=str(image), image_size=32, channels=4)
    with pytest.raises(ValueError, match=r"model.predict_source 'c' is not one of model.domains"):
        StarGANv2(domains=("a", "b"), predict_source="c", image_size=32, channels=4, max_conv_dim=16)
    with pytest.raises(StyleError, match=r"--ckpt .* holds a CycleGAN: styles are codes of a multi-style model"):
        command("style", "add", "x", f"--ckpt={trained_checkpoint('cyclegan')}", "--images=.")


def test_strength_interpolates_codes_linearly():
    own, target = torch.zeros(2, 4), torch.ones(1, 4)
    assert torch.equal(with_strength(own, target, 0.0), own)
    assert torch.equal(with_strength(own, target, 1.0), target.expand(2, -1))
    torch.testing.assert_close(with_strength(own, target, 0.25), torch.full((2, 4), 0.25))


def test_the_style_command_lists_its_subcommands(capsys):
    assert command("style", "--help") == 0
    assert "add " in capsys.readouterr().out
    assert command("style") == 2
    assert "style needs a subcommand: add, list, show" in capsys.readouterr().err
    assert command("style", "add", "--help") == 0
    out = capsys.readouterr().out
    assert "--ckpt CKPT" in out and "--images IMAGES" in out and "(required)" in out


# -- a new style fine-tuned into a trained model ---------------------------------------------------------------------


def test_warm_start_maps_each_domains_heads_by_name_and_starts_a_new_one_from_another(checkpoint):
    base = model_of(checkpoint)  # domains photo, cartoon, sketch, night
    domains = ["night", "photo", "cartoon", "sketch", "mine"]  # reordered, and one new
    model = StarGANv2(domains=domains, **{k: base.hparams[k] for k in ("image_size", "style_dim", "latent_dim",
                      "hidden_dim", "max_conv_dim", "channels")})  # fmt: skip
    model.load_warm_start(str(checkpoint), "cartoon")
    old = {name: base.domains.index(name) for name in base.domains} | {"mine": base.domains.index("cartoon")}
    for i, name in enumerate(domains):
        j = old[name]
        for prefix in ("generators", "ema"):
            for network in ("mapping", "style_encoder"):
                ours = getattr(model, prefix)[network]
                theirs = getattr(base, prefix)[network]
                ours, theirs = (getattr(m, "module", m).heads[k] for m, k in ((ours, i), (theirs, j)))
                for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
                    assert torch.equal(a, b), (prefix, network, name)
        assert torch.equal(model.D.head.weight[i], base.D.head.weight[j])
    assert torch.equal(model.ema["generator"].module.to_rgb[-1].weight, base.ema["generator"].module.to_rgb[-1].weight)
    assert torch.equal(model.G.encode[0].conv1.weight, base.G.encode[0].conv1.weight)

    with pytest.raises(ValueError, match=r"model.warm_start .*: its domains .* must all be among model.domains"):
        StarGANv2(domains=["photo", "mine"], image_size=32, channels=4, max_conv_dim=16).load_warm_start(
            str(checkpoint)
        )
    with pytest.raises(ValueError, match=r"does not fit this model: .*shape"):
        StarGANv2(domains=domains, image_size=32, channels=8, max_conv_dim=16).load_warm_start(str(checkpoint))
    with pytest.raises(FileNotFoundError, match=r"model.warm_start missing.ckpt not found"):
        StarGANv2(domains=domains, warm_start="missing.ckpt")


def test_data_domains_choose_and_extra_domains_add_a_folder(tmp_path):
    from lit_gan.data import StyleDataModule

    write_images(tmp_path / "mine", 3)
    common = {"name": "synthetic", "mode": "domains", "load_size": 32, "crop_size": 32, "synthetic": {"test_size": 2}}
    data = StyleDataModule(**common, domains=["night", "photo"], extra_domains={"mine": str(tmp_path / "mine")})
    assert data.domains == ("night", "photo", "mine")
    held_out, _ = data.held_out_images("mine")
    assert len(held_out) == 3  # the folder's images are its held-out images too
    with pytest.raises(ValueError, match=r"data.domains \['photo', 'x'\]: each once, from the data's domains"):
        StyleDataModule(**common, domains=["photo", "x"])
    with pytest.raises(ValueError, match=r"data.extra_domains \['night'\]: already domains of the data"):
        StyleDataModule(**common, extra_domains={"night": str(tmp_path / "mine")})
    with pytest.raises(FileNotFoundError, match=r"from data.extra_domains.new"):
        StyleDataModule(**common, extra_domains={"new": str(tmp_path / "none")})


def test_style_train_fine_tunes_a_new_style_into_the_model_and_stores_it(checkpoint, tmp_path, monkeypatch):
    from lit_gan.style_command import style_train

    images = write_images(tmp_path / "new_style", 3, size=40, seed=3)
    warm_starts = []
    load = StarGANv2.load_warm_start
    monkeypatch.setattr(StarGANv2, "load_warm_start", lambda self, *a: (warm_starts.append(a), load(self, *a)))
    assert style_train("mine", ckpt=str(checkpoint), images=str(tmp_path / "new_style"), minutes=5,
                       args=["--trainer.max_steps=2", "--trainer.logger.init_args.save_dir=runs"]) == 0  # fmt: skip
    assert warm_starts == [(str(checkpoint), warm_starts[0][1])] and warm_starts[0][1] in model_of(checkpoint).domains
    (new_ckpt,) = tmp_path.glob("runs/lit_gan/*/checkpoints/last.ckpt")
    model = model_of(new_ckpt)
    assert model.domains == ["photo", "cartoon", "sketch", "night", "mine"] and model.hparams.augment
    style = read_style("styles/mine.pt")
    assert style.domain == "mine" and len(style.codes) == len(images)
    assert style.model["fingerprint"] == model.identity()["fingerprint"]

    # resumed, the run continues from its own checkpoint: no second warm start
    run = new_ckpt.parent.parent
    main(["fit", f"--config={run / 'config.yaml'}", f"--ckpt_path={new_ckpt}", "--trainer.max_steps=3"])
    assert len(warm_starts) == 1
    with pytest.raises(StyleError, match=r"'night' is already a style of the model"):
        style_train("night", ckpt=str(checkpoint), images=str(tmp_path / "new_style"))
