"""The style bank: a style of a multi-style model (StarGAN v2) stored as a small file and applied to any photo.

A style file (`styles/<name>.pt`, written by `python -m lit_gan style add`) holds the style codes of a few images
(the style encoder's, per image, and their mean), the model domain whose head encoded them, up to eight thumbnails of
the images, and the identity of the model that made it: a code means something only to the generator it was made
with, so applying a style to another model is refused, naming both. The file is read weights-only (tensors and
plain values): a file holding anything else is refused in one line, as a crafted checkpoint is.

    from lit_gan.styles import read_style
    style = read_style("styles/night.pt")   # style.code: (style_dim,), style.codes: (N, style_dim)
    generator = torch.export.load("export/generator.pt2").module()
    out = generator(photos, style.code.expand(len(photos), -1))   # the exported generator takes stored codes
"""

import hashlib
import pickle
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor, nn

from lit_gan.runs import StrPath, atomic_write

FORMAT = "lit_gan.style/1"
"""The `format` entry of every style file (and its version)."""
DEFAULT_BANK = "styles"
"""The bank folder when none is given: `styles/` in the working folder."""
SUFFIX = ".pt"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class StyleError(ValueError):
    """A style file or style request that cannot be used (the message names the file or setting and the fix)."""


class StyleRefused(StyleError):
    """A style file that holds something other than tensors and plain values: unpickling it could run code."""


@dataclass
class Style:
    """One stored style.

    Attributes:
        name: the style's name in the bank.
        domain: the model domain whose style-encoder head encoded the images.
        codes: (N, style_dim) the code of each image.
        images: the images' file names, in the order of `codes`.
        thumbnails: (k, 3, h, w) uint8 copies of the first k <= 8 images (for `style show`).
        model: the model it was made with: {"class", "fingerprint", "checkpoint", "step"}.
    """

    name: str
    domain: str
    codes: Tensor
    images: list[str]
    thumbnails: Tensor
    model: dict
    path: Path | None = field(default=None, compare=False)

    @property
    def code(self) -> Tensor:
        """(style_dim,) the style's code: the mean of its images' codes."""
        return self.codes.mean(0)


def fingerprint(networks: dict[str, nn.Module]) -> str:
    """A hash of the networks' weights (their state dicts, in name order): equal for a model and every copy of it
    loaded from the same checkpoint, different after any training step."""
    digest = hashlib.sha256()
    for prefix, network in sorted(networks.items()):
        for key, value in sorted(network.state_dict().items()):
            digest.update(f"{prefix}.{key}:{value.dtype}:{tuple(value.shape)}".encode())
            digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def describe_model(model: dict) -> str:
    """A model's identity in a message: its checkpoint (and step) and fingerprint."""
    where = model.get("checkpoint") or "a model built in Python"
    step = f", step {model['step']}" if model.get("step") is not None else ""
    return f"{where} ({model.get('class', 'model')}{step}, fingerprint {model.get('fingerprint')})"


def style_path(name: StrPath, bank: StrPath = DEFAULT_BANK) -> Path:
    """The file of style `name`: `<bank>/<name>.pt`, or `name` itself when it is a path (has a folder or ends .pt)."""
    text = str(name)
    if text.endswith(SUFFIX) or "/" in text or "\\" in text:
        return Path(text)
    if not NAME.fullmatch(text):
        raise StyleError(f"style name {text!r}: use letters, digits, '_', '.' and '-' (e.g. my_style)")
    return Path(bank) / f"{text}{SUFFIX}"


def save_style(style: Style, path: StrPath) -> Path:
    """Write `style` to `path` atomically (a failure leaves no file); returns the path."""
    payload = {"format": FORMAT, **{k: v for k, v in asdict(style).items() if k != "path"}}
    payload["codes"] = style.codes.detach().cpu().float().contiguous()
    payload["thumbnails"] = style.thumbnails.detach().cpu().to(torch.uint8).contiguous()
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))
    return Path(path)


def read_style(path: StrPath) -> Style:
    """The style stored at `path`, read weights-only.

    Raises:
        StyleRefused: naming the file, if it holds anything but tensors and plain values (nothing in it is run).
        StyleError: naming the file, if it is missing or not a lit_gan style file.
    """
    path = Path(path)
    if not path.is_file():
        raise StyleError(f"style file {path} not found: add it with `python -m lit_gan style add NAME --ckpt ... "
                         "--images FOLDER`, or list the bank with `python -m lit_gan style list`")  # fmt: skip
    if not zipfile.is_zipfile(path):
        raise StyleError(f"{path} is not a lit_gan style file (not a torch.save archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise StyleRefused(
            f"style file {path} refused: it holds objects that would run code when loaded, so it is not a lit_gan "
            "style file (lit_gan reads style files weights-only: tensors and plain values)"
        ) from None
    except (RuntimeError, EOFError, ValueError) as err:
        raise StyleError(f"{path} is not a lit_gan style file: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise StyleError(f"{path} is not a lit_gan style file (format {FORMAT!r}); write one with `style add`")
    codes = payload.get("codes")
    if not isinstance(codes, Tensor) or codes.ndim != 2 or len(codes) == 0:
        raise StyleError(f"{path}: its codes are not an (N, style_dim) tensor")
    fields = {k: payload[k] for k in ("name", "domain", "codes", "images", "thumbnails", "model")}
    return Style(**fields, path=path)


def check_model(style: Style, model: dict) -> None:
    """Refuse `style` unless it was made with `model` ({"fingerprint", ...}): a code only means something to the
    generator it was made with."""
    if style.model.get("fingerprint") != model.get("fingerprint"):
        raise StyleError(
            f"style {style.name!r} ({style.path}) was made with the model of {describe_model(style.model)}, not with "
            f"this one, {describe_model(model)}: add the style to this model with `python -m lit_gan style add "
            f"{style.name} --ckpt CHECKPOINT --images FOLDER`"
        )


def parse_blend(spec: str) -> list[tuple[str, float]]:
    """The (style, weight) pairs of a style request: "night" (weight 1) or a blend "night:0.7,sketch:0.3" (weights
    positive, scaled to sum to 1)."""
    pairs = []
    for part in (p.strip() for p in spec.split(",")):
        name, _, weight = part.rpartition(":") if ":" in part else (part, "", "1")
        try:
            value = float(weight)
        except ValueError:
            value = float("nan")
        if not name or not value > 0:
            raise StyleError(f"style {spec!r}: give NAME or a blend NAME:WEIGHT,NAME:WEIGHT with positive weights "
                             "(e.g. night:0.7,sketch:0.3)")  # fmt: skip
        pairs.append((name, value))
    total = sum(weight for _, weight in pairs)
    return [(name, weight / total) for name, weight in pairs]


def blended_code(spec: str, model: dict, bank: StrPath = DEFAULT_BANK) -> Tensor:
    """(style_dim,) the code a style request `spec` (see `parse_blend`) asks for, every style checked against
    `model` (see `check_model`): the weighted sum of the styles' codes."""
    code = None
    for name, weight in parse_blend(spec):
        style = read_style(style_path(name, bank))
        check_model(style, model)
        code = weight * style.code if code is None else code + weight * style.code
    return code


def image_tensor(image: Image.Image, size: int) -> Tensor:
    """(1, 3, size, size) in [-1, 1]: an RGB image resized to the style encoder's input, as the reference code resizes
    its reference images."""
    return TF.to_tensor(image.convert("RGB").resize((size, size), Image.BILINEAR)).unsqueeze(0) * 2 - 1


def with_strength(own: Tensor, target: Tensor, strength: float) -> Tensor:
    """Codes from `own` (the images' own, strength 0: their reconstruction) to `target` (strength 1), linearly."""
    return torch.lerp(own, target.expand_as(own), strength)
