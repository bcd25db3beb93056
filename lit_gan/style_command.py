"""`python -m lit_gan style add|list|show|train`: the style bank of a multi-style model (StarGAN v2).

    python -m lit_gan style add my_style --ckpt runs/lit_gan/<id>/checkpoints/last.ckpt --images my_paintings/
    python -m lit_gan style list
    python -m lit_gan style show my_style --ckpt runs/lit_gan/<id>/checkpoints/last.ckpt
    python -m lit_gan style train my_new_style --ckpt runs/lit_gan/<id>/checkpoints/last.ckpt --images my_paintings/
    python -m lit_gan predict --config <run>/config.yaml --ckpt_path <ckpt> --data.predict.path photos/ \\
        --predict_writer.output_dir stylized/ --style my_style --strength 0.8

What a style file holds and how it is checked: `lit_gan.styles`.
"""

import datetime
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from lit_gan.data import StyleDataModule
from lit_gan.data.images import list_images
from lit_gan.data.options import upgrade_data_hparams
from lit_gan.image_io import read_rgb
from lit_gan.models.loading import load_checkpoint
from lit_gan.runs import atomic_write, checkpoint_summary, run_dir
from lit_gan.styles import (
    DEFAULT_BANK,
    Style,
    StyleError,
    check_model,
    describe_model,
    image_tensor,
    read_style,
    save_style,
    style_path,
)
from lit_gan.styles import (
    NAME as NAME_PATTERN,
)

THUMBNAILS, THUMBNAIL_SIZE = 8, 64


def load_style_model(ckpt: str) -> tuple[torch.nn.Module, dict, dict]:
    """The multi-style model of checkpoint `ckpt` (read weights-only), its identity and its data's hyperparameters."""
    model, data_hparams = load_checkpoint(ckpt)
    if not hasattr(model, "identity") or not hasattr(model, "reference_codes"):
        raise StyleError(f"--ckpt {ckpt} holds a {type(model).__name__}: styles are codes of a multi-style model "
                         "(StarGANv2); train one, e.g. configs/quickstart_stargan_v2.yaml")  # fmt: skip
    return model, model.identity(str(ckpt), checkpoint_summary(Path(ckpt))["step"]), data_hparams


def read_images(folder: str, size: int, key: str) -> tuple[list[Path], Tensor]:
    """The images under `folder` (named by `key` in errors) and (N, 3, size, size) in [-1, 1]."""
    paths = list_images(folder, key)
    return paths, torch.cat([image_tensor(read_rgb(path), size) for path in paths])


def most_real_domain(model, x: Tensor) -> tuple[str, dict[str, float]]:
    """The domain whose discriminator head finds the images `x` most real (mean logit), and every domain's."""
    with torch.no_grad():
        scores = {
            name: model.D(x, torch.full((len(x),), i, dtype=torch.long)).mean().item()
            for i, name in enumerate(model.domains)
        }
    return max(scores, key=scores.get), scores


def style_add(
    name: str,
    *,
    ckpt: str,
    images: str,
    bank: str = DEFAULT_BANK,
    domain: str | None = None,
    overwrite: bool = False,
) -> int:
    """Encode a folder of images into a style of a model and store it in the bank.

    Args:
        name: the style's name (letters, digits, '_', '.', '-'); its file is `<bank>/<name>.pt`.
        ckpt: the checkpoint of a trained multi-style model (StarGANv2), read weights-only.
        images: a folder of images of the style (searched recursively; one image is enough, 10-50 are better).
        bank: the folder of stored styles.
        domain: the model domain whose style-encoder head encodes the images; null: the domain whose discriminator
            head finds them most real.
        overwrite: replace a stored style of the same name.
    """
    path = style_path(name, bank)
    if path.exists() and not overwrite:
        raise StyleError(f"style {name!r} already exists ({path}): choose another name or pass --overwrite true")
    model, identity, _ = load_style_model(ckpt)
    if domain is not None and domain not in model.domains:
        raise StyleError(f"--domain {domain!r} is not one of the model's domains {model.domains}")
    paths, x = read_images(images, model.image_size, "--images")
    if domain is None:
        domain, scores = most_real_domain(model, x)
        print("domain by the discriminator (mean logit): " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    with torch.no_grad():
        codes = torch.cat([model.reference_codes(model.domains.index(domain), part) for part in x.split(16)])
    thumbnails = torch.nn.functional.interpolate(x[:THUMBNAILS], size=min(model.image_size, THUMBNAIL_SIZE),
                                                 mode="area")  # fmt: skip
    style = Style(
        name=path.stem,
        domain=domain,
        codes=codes,
        images=[str(p.relative_to(images)) for p in paths],
        thumbnails=((thumbnails + 1) * 127.5).round().clamp(0, 255).to(torch.uint8),
        model={**identity, "created": datetime.datetime.now().isoformat(timespec="seconds")},
    )
    save_style(style, path)
    print(f"style {style.name!r}: {len(paths)} images, encoded as domain {domain!r}, {path.stat().st_size} bytes -> "
          f"{path}")  # fmt: skip
    return 0


PRESET = Path(__file__).resolve().parents[1] / "configs" / "presets" / "add_style.yaml"


def style_train(
    name: str,
    *,
    ckpt: str,
    images: str,
    minutes: float = 10.0,
    bank: str = DEFAULT_BANK,
    start_from: str | None = None,
    preset: str = str(PRESET),
    args: list[str] | None = None,
) -> int:
    """Fine-tune a trained model into a new style from a folder of images, and store the style.

    The model gets the new style as one more domain (new heads for the mapping network, style encoder and
    discriminator, started from those of `start_from`), every network warm-started from `ckpt`, and trains on the run's
    own data plus the folder for `minutes` with the settings of `preset` (layered over the run's config.yaml); the new
    model's style is then stored in the bank as `name`. Styles stored for the old model stay tied to it.

    Args:
        name: the new style's name: a new domain of the model, and its name in the bank.
        ckpt: the checkpoint of a trained StarGANv2 run (its config.yaml is read from the run folder).
        images: a folder of 10-50 images of the new style.
        minutes: training time.
        bank: the folder of stored styles.
        start_from: the model domain whose heads the new style starts from; null: the one whose discriminator head
            finds the images most real.
        preset: the fine-tuning settings (configs/presets/add_style.yaml).
        args: more `fit` arguments, e.g. ["--trainer.logger.init_args.name=mine"].
    """
    if not NAME_PATTERN.fullmatch(name):
        raise StyleError(f"style name {name!r}: use letters, digits, '_', '.' and '-' (e.g. my_style)")
    model, _, _ = load_style_model(ckpt)
    run_config = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not run_config.is_file():
        raise StyleError(f"--ckpt {ckpt}: no config.yaml in its run folder ({run_config}); train with `fit`")
    if name in model.domains:
        raise StyleError(f"{name!r} is already a style of the model ({model.domains}): choose a new name")
    if not Path(preset).is_file():
        raise StyleError(f"--preset {preset} not found (configs/presets/add_style.yaml of the lit_gan checkout)")
    if start_from is None:
        start_from, scores = most_real_domain(model, read_images(images, model.image_size, "--images")[1])
        print(f"new style {name!r} starts from {start_from!r} (discriminator, mean logit: "
              + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) + ")")  # fmt: skip
    elif start_from not in model.domains:
        raise StyleError(f"--start_from {start_from!r} is not one of the model's domains {model.domains}")
    domains = [*model.domains, name]
    fit_args = [
        "fit", f"--config={run_config}", f"--config={preset}", f"--model.domains=[{', '.join(domains)}]",
        f"--model.warm_start={ckpt}", f"--model.warm_start_from={start_from}",
        f"--data.extra_domains={{{name}: {Path(images).resolve()}}}",
        f"--trainer.max_time={{seconds: {round(minutes * 60)}}}", *(args or []),
    ]  # fmt: skip
    from lit_gan.cli import main  # the command map imports this module

    cli = main(fit_args)
    new_ckpt = run_dir(cli.trainer) / "checkpoints" / "last.ckpt"
    return style_add(name, ckpt=str(new_ckpt), images=images, bank=bank, domain=name, overwrite=True)


def style_list(bank: str = DEFAULT_BANK) -> int:
    """List the stored styles (name, domain, images, model).

    Args:
        bank: the folder of stored styles.
    """
    files = sorted(Path(bank).glob("*.pt"))
    if not files:
        print(f"no styles in {bank}/: add one with `python -m lit_gan style add NAME --ckpt ... --images FOLDER`")
        return 0
    for file in files:
        try:
            style = read_style(file)
        except StyleError as error:
            print(f"{file.stem:<20} unusable: {error}")
            continue
        print(f"{style.name:<20} {style.domain:<12} {len(style.codes):>4} images  {describe_model(style.model)}")
    return 0


def style_show(
    name: str,
    *,
    ckpt: str,
    photos: str | None = None,
    bank: str = DEFAULT_BANK,
    output: str | None = None,
    num_photos: int = 6,
) -> int:
    """Write a grid of a stored style on photos (PNG).

    Its own images along the top, then per photo: the photo, the photo in the style (its mean code) and in each
    image's own code.

    Args:
        name: the style (a name in the bank, or a style file).
        ckpt: the checkpoint of the model the style was made with.
        photos: a folder of photos to show the style on; null: held-out images of the model's first domain, from
            the data it was trained on.
        bank: the folder of stored styles.
        output: the PNG to write; null: `<bank>/<name>.png`.
        num_photos: most photos shown.
    """
    style = read_style(style_path(name, bank))
    model, identity, data_hparams = load_style_model(ckpt)
    check_model(style, identity)
    x = show_photos(model, data_hparams, photos)[:num_photos]
    k = min(len(style.thumbnails), 6)
    codes = [style.code, *style.codes[:k]]
    with torch.no_grad():
        columns = [x, *(model.translator("generator")(x, code.expand(len(x), -1)) for code in codes)]
    size = x.shape[-1]
    tops = torch.nn.functional.interpolate(style.thumbnails[:k].float() / 127.5 - 1, size=size, mode="nearest")
    grey = torch.zeros(2, *x.shape[1:])
    rows = torch.cat([torch.cat([grey, tops]), torch.stack(columns, 1).flatten(0, 1)])
    grid = make_grid(rows.clamp(-1, 1), nrow=len(columns), padding=2, normalize=True, value_range=(-1, 1))
    out = Path(output) if output else style_path(name, bank).with_suffix(".png")
    atomic_write(out, lambda tmp: save_image(grid, tmp, format="png"))
    print(f"style {style.name!r} on {len(x)} photos (columns: photo, the style, its images' codes) -> {out}")
    return 0


def show_photos(model, data_hparams: dict, photos: str | None) -> Tensor:
    """(N, 3, S, S) photos for `style show`: the images under `photos`, or the held-out images of the model's first
    domain from the data in `data_hparams` (the checkpoint's)."""
    if photos is not None:
        return read_images(photos, model.image_size, "--photos")[1]
    keys = ("name", "root", "mode", "load_size", "crop_size", "synthetic")
    try:
        data = StyleDataModule(**{k: v for k, v in upgrade_data_hparams(data_hparams).items() if k in keys})
        dataset, _ = data.held_out_images(model.domains[0])
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise StyleError(f"the model's held-out images are not available ({error}): give --photos FOLDER") from error
    return torch.stack([dataset[i]["A"] for i in range(len(dataset))])
