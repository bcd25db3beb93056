"""`python -m lit_gan style add|list|show`: the style bank of a multi-style model (StarGAN v2) from the command line.

    python -m lit_gan style add my_style --ckpt runs/lit_gan/<id>/checkpoints/last.ckpt --images my_paintings/
    python -m lit_gan style list
    python -m lit_gan style show my_style --ckpt runs/lit_gan/<id>/checkpoints/last.ckpt
    python -m lit_gan predict --config <run>/config.yaml --ckpt_path <ckpt> --data.predict_path photos/ \\
        --predict_writer.output_dir stylized/ --style my_style --strength 0.8

What a style file holds and how it is checked: `lit_gan.styles`.
"""

import datetime
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from lit_gan.data import StyleDataModule
from lit_gan.data.images import list_images, read_rgb
from lit_gan.models.loading import load_checkpoint
from lit_gan.runs import atomic_write, checkpoint_summary
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
    keys = ("name", "root", "mode", "load_size", "crop_size", "synthetic_train_size", "synthetic_test_size")
    try:
        data = StyleDataModule(**{k: v for k, v in data_hparams.items() if k in keys})
        dataset, _ = data.held_out_images(model.domains[0])
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise StyleError(f"the model's held-out images are not available ({error}): give --photos FOLDER") from error
    return torch.stack([dataset[i]["A"] for i in range(len(dataset))])
