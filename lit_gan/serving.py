"""Trained models for interactive use (`python -m lit_gan app`): the runs and files to choose from, models loaded once
and kept, and the translation of images as `predict` makes them, with a strength, a style, an output size and the
EMA or raw generator. No Gradio here: the app (`lit_gan.app`) is a view on this module.

    from lit_gan.serving import Models, find_choices
    choice = find_choices([])[0]                       # the newest run under runs/lit_gan
    model = Models().get(choice.checkpoints["last"])  # loaded weights-only, cached
    outputs = model.translate([image], model.directions[0], strength=0.5)
"""

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from PIL import Image
from torch import Tensor, nn

import lit_gan.models  # noqa: F401  (the classes that checkpoints name must be imported to be loaded)
from lit_gan.callbacks.predictions import to_image
from lit_gan.data.predict import header_size, to_model_input
from lit_gan.image_io import read_image, read_problem
from lit_gan.journal import journal_numbers, read_journal
from lit_gan.metric_keys import VAL_FID, VAL_KID, goal
from lit_gan.models.base import GANModule
from lit_gan.models.loading import load_checkpoint
from lit_gan.networks.shapes import crop_padding, pad_to_multiple
from lit_gan.runs import CheckpointError, import_class

RUNS_FOLDER = Path("runs/lit_gan")
"""Where `python -m lit_gan fit` writes its runs (`<save_dir>/<project>/<run id>/`), read when no path is given."""
CHECKPOINT_SUFFIXES = (".ckpt",)
EXPORTED_SUFFIXES = (".pt2",)
SHOWN_METRICS = (VAL_FID, VAL_KID)


class ServingError(ValueError):
    """A path, image or setting the app cannot use (the message names it and says how to fix it)."""


class Busy(ServingError):
    """More requests are waiting than the app takes (its `--queue`)."""


# -- what there is to choose from ---------------------------------------------------------------------------------


@dataclass
class Choice:
    """One run or model file the app offers.

    Attributes:
        label: how the app lists it: run name, model, run id and best metrics.
        path: the run folder, or the checkpoint or exported file.
        checkpoints: {"best"/"last"/file name: file}, best first; an exported file is its own single entry.
        model: the model's class name, where known without loading it.
        metrics: {key: (best value, its step)} of the run's evaluations (`SHOWN_METRICS`).
    """

    label: str
    path: Path
    checkpoints: dict[str, Path]
    model: str | None = None
    metrics: dict[str, tuple[float, int]] = field(default_factory=dict)

    def describe(self) -> str:
        """The metrics in a line, e.g. "val/fid 41.2 (step 4000), val/kid_mean 0.012 (step 4000)"."""
        shown = [f"{key} {value:.4g} (step {step})" for key, (value, step) in self.metrics.items()]
        return ", ".join(shown) or "no evaluation logged"


def find_choices(paths: Sequence[str | Path] = (), runs_folder: Path = RUNS_FOLDER) -> list[Choice]:
    """The runs and files `paths` name: a run folder (holding `checkpoints/`), a folder of runs (e.g.
    `runs/lit_gan`, newest first), a checkpoint (`.ckpt`) or an exported generator (`.pt2`); without `paths`, the
    runs under `runs_folder`. Nothing is loaded: checkpoints are read when chosen (`Models.get`).

    Raises:
        ServingError: naming the path and what to give instead, if one is missing or is none of these, or if
            there is nothing to offer.
    """
    if not paths:
        if not runs_folder.is_dir():
            raise ServingError(
                f"no runs in {runs_folder}: train one (python -m lit_gan fit --config configs/quickstart.yaml) or "
                "give a run folder, a checkpoint or an exported .pt2 file: python -m lit_gan app PATH"
            )
        paths = [runs_folder]
    choices: list[Choice] = []
    for path in map(Path, paths):
        if path.is_file():
            if path.suffix not in CHECKPOINT_SUFFIXES + EXPORTED_SUFFIXES:
                raise ServingError(f"{path} is neither a checkpoint (.ckpt) nor an exported generator (.pt2)")
            choices.append(file_choice(path))
        elif (path / "checkpoints").is_dir():
            choices.append(run_choice(path))
        elif path.is_dir():
            runs = sorted(
                (p for p in path.iterdir() if (p / "checkpoints").is_dir() and any((p / "checkpoints").glob("*.ckpt"))),
                key=lambda p: max(c.stat().st_mtime for c in (p / "checkpoints").glob("*.ckpt")),
                reverse=True,
            )
            if not runs:
                raise ServingError(f"{path} holds no run (a folder with checkpoints/*.ckpt): give a run folder, a "
                                   "checkpoint or an exported .pt2 file")  # fmt: skip
            choices += [run_choice(run) for run in runs]
        else:
            raise ServingError(f"{path} does not exist: give a run folder, a checkpoint or an exported .pt2 file")
    return choices


def run_choice(folder: Path) -> Choice:
    """A run folder's choice: its checkpoints (the best by its journal's val/fid, then last.ckpt, then the others),
    name and model from its config.yaml, metrics from its journal."""
    files = sorted((folder / "checkpoints").glob("*.ckpt"))
    if not files:
        raise ServingError(f"run {folder} has no checkpoint in {folder / 'checkpoints'}: it saved none yet")
    metrics = best_metrics(folder / "checkpoints" / "journal.jsonl")
    checkpoints: dict[str, Path] = {}
    best = [f for f in files if f.name.startswith("best-")]
    if best:
        fid_step = metrics.get(VAL_FID, (None, None))[1]
        chosen = next((f for f in best if step_of(f) == fid_step), max(best, key=lambda f: f.stat().st_mtime))
        checkpoints[f"best (step {step_of(chosen)})"] = chosen
    last = folder / "checkpoints" / "last.ckpt"
    if last.is_file():
        checkpoints["last"] = last
    for f in reversed(files):
        if f not in checkpoints.values():
            checkpoints[f.stem] = f
    name, model = run_config(folder)
    label = " · ".join(x for x in (name, model, folder.name) if x)
    if VAL_FID in metrics:
        label += f" · val/fid {metrics[VAL_FID][0]:.4g}"
    return Choice(label, folder, checkpoints, model, metrics)


def file_choice(path: Path) -> Choice:
    """A checkpoint or exported file's choice; a checkpoint in a run's `checkpoints/` has its run's name and metrics."""
    folder = path.parent.parent if path.parent.name == "checkpoints" else None
    name, model = run_config(folder) if folder is not None else (None, None)
    metrics = best_metrics(path.parent / "journal.jsonl") if folder is not None else {}
    label = " · ".join(x for x in (name, model, path.name) if x)
    return Choice(label, path, {path.name: path}, model, metrics)


def run_config(folder: Path) -> tuple[str | None, str | None]:
    """The run's name and model class name, from its `config.yaml` (None where it is missing or unreadable)."""
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None, None
    logger = (config.get("trainer") or {}).get("logger") or {}
    name = (logger.get("init_args") or {}).get("name") if isinstance(logger, dict) else None
    cls = import_class((config.get("model") or {}).get("class_path"))
    return name, getattr(cls, "__name__", None)


def best_metrics(journal: Path) -> dict[str, tuple[float, int]]:
    """{key: (best value, step)} of `SHOWN_METRICS` in a run's journal; {} without one."""
    if not journal.is_file():
        return {}
    try:
        rows = journal_numbers(read_journal(journal))
    except ValueError:  # a damaged line: the metrics are extra information here, not worth failing for
        return {}
    found: dict[str, tuple[float, int]] = {}
    for step, values in rows:
        for key in SHOWN_METRICS:
            value = values.get(key)
            if value is None or not math.isfinite(value):
                continue
            if key not in found or (value < found[key][0] if goal(key) == "minimize" else value > found[key][0]):
                found[key] = (value, step)
    return found


def step_of(checkpoint: Path) -> int | None:
    """The step in a checkpoint's name (`best-step0000400.ckpt` -> 400), or None."""
    digits = checkpoint.stem.rpartition("step")[2]
    return int(digits) if digits.isdigit() else None


# -- loaded models ----------------------------------------------------------------------------------------------------


@dataclass
class StyleRequest:
    """How a multi-style model (StarGAN v2) styles the photos: a latent code `seed` of the direction's target domain
    (the default), a stored style or blend of styles `style` ("night" or "night:0.7,sketch:0.3", from `bank`), or
    the style of a `reference` image."""

    seed: int = 0
    style: str | None = None
    reference: str | None = None
    bank: str = "styles"


class LoadedModel:
    """A model ready to translate: a checkpoint's GAN module (weights-only, eval mode) or an exported generator.

    Attributes:
        directions: what it translates, e.g. ["AtoB", "BtoA"] (StarGAN v2: ["to_cat", "to_dog"]).
        sources: each direction's source domain (what predict's data.predict.domain would be).
        has_ema: whether it keeps an EMA generator beside the raw one.
        styles: whether it takes style codes (StarGAN v2).
        load_seconds: how long loading took.
    """

    def __init__(self, path: Path, device: torch.device) -> None:
        start = time.perf_counter()
        self.path, self.device = path, device
        self.module: GANModule | None = None
        self.exported: nn.Module | None = None
        if path.suffix in EXPORTED_SUFFIXES:
            self._load_exported(path)
        else:
            self.module = load_checkpoint(path)[0].to(device)
            domains = ["A"] if self.styles else ["A", "B"]
            try:
                self.sources = self.module.predict_directions(domains)
            except ValueError as err:  # DCGAN and ProGAN make images from noise
                raise ServingError(f"{path}: {str(err).splitlines()[0]}") from None
            self.multiple = self.module.size_multiple
        self.directions = list(self.sources)
        self.load_seconds = time.perf_counter() - start

    def _load_exported(self, path: Path) -> None:
        try:
            program = torch.export.load(path)
        except Exception as err:  # not an ExportedProgram archive, or one of another torch version
            raise CheckpointError(f"{path} is not an exported generator (torch.export.save): {err}") from None
        inputs = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
        if len(inputs) != 1:
            raise ServingError(f"{path} takes {len(inputs)} inputs (images and style codes): serve its checkpoint, "
                               "which the app can give styles to")  # fmt: skip
        self.exported = program.module().to(self.device)
        self.sources = {path.stem: "A"}
        self.multiple = exported_multiple(program)

    @property
    def styles(self) -> bool:
        return self.module is not None and hasattr(self.module, "reference_codes")

    @property
    def has_ema(self) -> bool:
        return self.module is not None and self.module.ema is not None

    @property
    def domains(self) -> list[str]:
        return list(getattr(self.module, "domains", []))

    @torch.no_grad()
    def translate(
        self,
        images: Sequence[Image.Image],
        direction: str,
        strength: float = 1.0,
        ema: bool = True,
        style: StyleRequest | None = None,
        batch_size: int = 4,
    ) -> list[Image.Image]:
        """The translations of RGB `images` by `direction`, each at its own size, as `predict` makes them (padded to
        the network's size multiple, cropped back; the same pixels at strength 1). Images of one size are
        translated in batches of up to `batch_size`.

        Args:
            strength: 1 the model's output; below 1, a multi-style model moves each photo's style code towards its
                own (0: its reconstruction), and other models blend the output with the photo (0: the photo).
            ema: the EMA generator (where the model keeps one), else the raw, trained one.
            style: for a multi-style model, the style to apply (default: latent code 0 of the target domain).
        """
        if direction not in self.sources:
            raise ServingError(f"direction {direction!r}: this model translates {', '.join(self.directions)}")
        if not 0.0 <= strength <= 1.0:
            raise ServingError(f"strength must be within 0..1, got {strength}")
        outputs: list[Image.Image | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(image.size, []).append(i)
        raw = self.module.raw_generators() if (self.module is not None and not ema) else nullcontext()
        with raw, self._style(direction, style, strength):
            for indices in by_size.values():
                for start in range(0, len(indices), batch_size):
                    chunk = indices[start : start + batch_size]
                    inputs = [to_model_input(images[i]) for i in chunk]
                    padded = [pad_to_multiple(x, self.multiple) for x in inputs]
                    x = torch.stack([p[0] for p in padded]).to(self.device)
                    padding = torch.tensor([p[1] for p in padded])
                    y = self._forward(direction, x, padding).float().cpu()
                    if not self.styles and strength != 1.0:  # the documented blend: photo + strength * change
                        y = torch.lerp(torch.stack(inputs), y, strength)
                    for i, out in zip(chunk, y):
                        outputs[i] = to_image(out)
        return outputs

    def _forward(self, direction: str, x: Tensor, padding: Tensor) -> Tensor:
        if self.exported is not None:
            return crop_padding(self.exported(x), padding)
        if self.styles:  # the one code `_style` set up (a target's, or a stored style's), as predict applies it
            (output,) = self.module.predict_step({"A": x, "padding": padding}).values()
            return output
        return crop_padding(self.module.generate(direction, x), padding)

    @contextmanager
    def _style(self, direction: str, style: StyleRequest | None, strength: float) -> Iterator[None]:
        """For a multi-style model, its predict settings (`model.predict_*`) for this request, as `predict
        --model.predict_...` sets them; restored afterwards."""
        if not self.styles:
            yield
            return
        style = style or StyleRequest()
        model = self.module
        keys = ("predict_target", "predict_style", "predict_reference", "predict_seed", "predict_bank",
                "predict_strength")  # fmt: skip
        saved = {key: getattr(model, key) for key in keys}
        model.predict_target = direction.removeprefix("to_")
        model.predict_style, model.predict_reference = style.style, style.reference
        model.predict_seed, model.predict_bank, model.predict_strength = style.seed, style.bank, strength
        try:
            model.on_predict_start()  # the request's code, read and encoded once
            yield
        finally:
            for key, value in saved.items():
                setattr(model, key, value)


def exported_multiple(program: torch.export.ExportedProgram) -> int:
    """The size multiple an exported generator's image input needs: the coefficient of its symbolic height (e.g. 4
    for `4*s0`), 1 for a fixed or free size."""
    names = {s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"}
    placeholder = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name in names)
    height = placeholder.meta["val"].shape[-2]
    if isinstance(height, torch.SymInt):
        coefficient = height.node.expr.as_coeff_Mul()[0]
        return int(coefficient) if coefficient.is_Integer and coefficient > 0 else 1
    return 1


def default_device() -> torch.device:
    """The GPU where there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Models:
    """Loaded models, kept by file (the `size` most recently used; loading is the slow part), loaded once even when
    several requests ask for the same file at once."""

    def __init__(self, device: torch.device | str | None = None, size: int = 2) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.size = size
        self._loaded: OrderedDict[Path, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | Path) -> LoadedModel:
        """The model of the checkpoint or exported file `path`, loaded (weights-only) on first use.

        Raises:
            CheckpointError: naming the file, if it is missing, refused (`CheckpointRefused`) or not a lit_gan model.
            ServingError: if the model translates nothing (DCGAN, ProGAN) or is an exported two-input generator.
        """
        path = Path(path).resolve()
        with self._lock:
            if path in self._loaded:
                self._loaded.move_to_end(path)
                return self._loaded[path]
            model = LoadedModel(path, self.device)
            self._loaded[path] = model
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
            return model


class Gate:
    """One translation at a time (each uses every core), and at most `queue` requests waiting for their turn; more
    are refused at once with `Busy` rather than left to wait without end."""

    def __init__(self, queue: int = 8) -> None:
        self.queue = queue
        self.waiting = 0
        self._count = threading.Lock()
        self._run = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._count:
            if self.waiting >= self.queue + 1:  # one translating, `queue` waiting
                raise Busy(f"busy: {self.waiting} requests are being translated or waiting (the app takes "
                           f"{self.queue} waiting, --queue); try again in a few seconds")  # fmt: skip
            self.waiting += 1
        try:
            with self._run:
                yield
        finally:
            with self._count:
                self.waiting -= 1


# -- images in --------------------------------------------------------------------------------------------------------


def open_photo(path: str | Path, name: str | None = None, max_pixels: int = 25_000_000) -> Image.Image:
    """The photo at `path` as RGB, as predict reads it (EXIF orientation applied; grayscale, transparent, 16-bit
    images converted), checked from its header first so that nothing large or foreign is decoded.

    Raises:
        ServingError: naming the file (`name`, else the path's name), if it is not an image PIL can read or has more
            than `max_pixels` pixels.
    """
    name = name or Path(path).name
    size = header_size(Path(path))
    if isinstance(size, str):
        raise ServingError(f"{name}: {size}; give a photo (JPEG, PNG, WebP, TIFF, ...)")
    if size[0] * size[1] > max_pixels:
        raise ServingError(f"{name}: {size[0]}x{size[1]} px is over the limit of {max_pixels / 1e6:.3g} megapixels "
                           "(--max_pixels); make it smaller first")  # fmt: skip
    try:
        return read_image(path)
    except Exception as err:  # corrupt or truncated data shows only when decoding
        raise ServingError(f"{name}: {read_problem(path, err)}; give a photo (JPEG, PNG, WebP, TIFF, ...)") from None


def resize_long_side(image: Image.Image, long_side: int | None) -> Image.Image:
    """`image` scaled (Lanczos) so that its longer side is `long_side` px; unchanged for None or that size."""
    if long_side is None or max(image.size) == long_side:
        return image
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)
