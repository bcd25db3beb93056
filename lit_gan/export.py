"""`python -m lit_gan export CKPT`: a trained generator as torch.export's ExportedProgram (`<direction>.pt2`, the
PyTorch-native format) and ONNX (`<direction>.onnx`) in inference semantics, with a parity check of each written file
against PyTorch. TorchScript (`<direction>.pt`) only when asked for (`--formats torchscript`): `torch.jit` is
deprecated.

Inference semantics are the model's own in eval mode: batch norm uses its running statistics, the EMA generator is
exported when EMA is on, and pix2pix's dropout stays on where `model.dropout_at_inference` keeps it on. Batch size is
dynamic in every format, and so are height and width (in multiples of the generator's `size_multiple`) for image
translators; the ExportedProgram and TorchScript check the multiple, ONNX does not.

Dropout on at inference is exported as sampled masks: the ExportedProgram and TorchScript draw them from torch's
generator (for TorchScript, calling `.eval()` on the loaded module turns them off), and ONNX gets a RandomUniformLike
mask instead of a Dropout node, which ONNX Runtime's graph optimizations would remove. ONNX Runtime draws new masks on
every run of a session, from the same seed in each new session (`onnxruntime.set_seed` changes it).

A model whose generator applies style codes (StarGAN v2: `model.export_names()` is ["generator"]) is exported as
that one network with two inputs, "input" (B, 3, H, W) images and "style" (B, style_dim) codes (from a stored style,
the mapping network or the style encoder), instead of one file per direction.

Parity: each written file is loaded back and run on random inputs at two sizes; the largest |exported - PyTorch| must
be at most `TOLERANCE`. With dropout on, the ExportedProgram and TorchScript are compared under the same seed (they
draw the same masks), and ONNX, whose masks come from ONNX Runtime's generator, on the deterministic path: the same
generator exported with dropout off (that copy is not written).

From Python:

from lit_gan.export import export_generator
report = export_generator("runs/lit_gan/<id>/checkpoints/last.ckpt")
print(report.table())
"""

import copy
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.export import Dim

import lit_gan.models  # noqa: F401  (the classes that checkpoints name must be importable)
from lit_gan.contracts import LatentGenerator, SizedNetwork, StyleConditioned
from lit_gan.models.base import GANModule
from lit_gan.models.loading import load_checkpoint
from lit_gan.networks.shapes import first_conv, last_conv
from lit_gan.runs import atomic_write

Format = Literal["pt2", "onnx", "torchscript"]
FORMATS: dict[str, str] = {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".pt"}
"""Export formats and the suffix of their files."""
DEFAULT_FORMATS: tuple[Format, ...] = ("pt2", "onnx")
"""The formats written unless others are asked for: TorchScript is deprecated in torch, a legacy choice."""
TOLERANCE = 1e-4
"""Largest |exported - PyTorch| output difference that passes the parity check."""
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")  # onnxscript: torch.onnx's exporter translates with it
DEFAULT_SIZE = 256
"""Height and width of the parity inputs when the checkpoint records no `data.crop_size`."""


class ExportError(ValueError):
    """A request that cannot be served (missing checkpoint or package, unknown direction, bad size): nothing is
    written, and the command line prints the message and exits with code 1."""


@dataclass(frozen=True)
class ParityCheck:
    """One row of the parity table: the largest |exported - PyTorch| over the outputs for one input shape."""

    format: str
    direction: str
    input_shape: tuple[int, ...]
    max_abs_diff: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= TOLERANCE


@dataclass
class ExportReport:
    """What `export_generator` wrote, each direction's input and output, and the parity checks of the files."""

    files: list[Path] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)
    checks: list[ParityCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def table(self) -> str:
        """The parity checks as a Markdown table."""
        rows = ["| format | direction | input | max abs diff | ok | note |", "|---|---|---|---|---|---|"]
        for c in self.checks:
            shape = "x".join(map(str, c.input_shape))
            ok = "yes" if c.ok else "NO"
            rows.append(f"| {c.format} | {c.direction} | {shape} | {c.max_abs_diff:.2e} | {ok} | {c.note} |")
        return "\n".join(rows)


@dataclass
class GeneratorExport:
    """One direction's generator, ready to export: an inference copy and the inputs it is exported and checked with."""

    direction: str
    net: nn.Module  # eval mode, with the model's inference dropout, no gradients
    example: tuple[Tensor, ...]  # traced: (2, nz) noise, or (2, C, H, W) images with H, W >= 2 multiples (and codes)
    inputs: list[tuple[Tensor, ...]]  # the parity inputs, at two sizes
    multiple: int | None  # height and width multiple of an image translator; None for noise

    @property
    def input_names(self) -> list[str]:
        """The inputs' names in the ONNX file: "input", and "style" for a style-conditioned translator."""
        return ["input", "style"][: len(self.example)]

    @property
    def stochastic(self) -> bool:
        """Whether dropout stays on at inference, so that outputs vary from call to call."""
        return any(_active_dropout(m) for m in self.net.modules())


class SampledDropout(nn.Module):
    """Dropout that samples its mask in every mode. It replaces active `nn.Dropout` layers in ONNX exports, because
    ONNX Runtime's graph optimizations remove Dropout nodes even when the graph asks for training mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.scale = 1.0 / (1.0 - p) if p < 1 else 0.0

    def forward(self, x: Tensor) -> Tensor:
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)  # same shape as x
        return x * keep * self.scale


def export_generator(
    ckpt_path: str | Path,
    out_dir: str | Path | None = None,
    direction: str | None = None,
    formats: Sequence[Format] = DEFAULT_FORMATS,
    height: int | None = None,
    width: int | None = None,
    opset: int | None = None,
) -> ExportReport:
    """Export the inference generators of a checkpoint written by `python -m lit_gan fit`, and check the files.

    Args:
        ckpt_path: the checkpoint.
        out_dir: folder for `<direction>.pt2`, `.onnx` and `.pt`; default `export/` in the checkpoint's run folder.
        direction: the direction to export (see the model's `directions()`); None exports all.
        formats: any of "pt2" (torch.export's ExportedProgram), "onnx" and "torchscript" (legacy).
        height: height of the parity inputs of image translators (default the checkpoint's data.crop_size, else 256,
            rounded up to the generator's size multiple); the exported files take other sizes too.
        width: their width (default `height`).
        opset: ONNX opset version (default: torch.onnx's choice).

    Raises:
        ExportError: before anything is written, for a missing or foreign checkpoint, a missing package, an unknown
            direction or format, or a size that is not a positive multiple of the generator's `size_multiple`.
    """
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise ExportError(f"checkpoint {ckpt_path} not found (e.g. runs/lit_gan/<id>/checkpoints/last.ckpt)")
    check_formats(formats)
    model, data_hparams = load_checkpoint(ckpt_path)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(ckpt_path)
    default_size = data_hparams.get("crop_size") or DEFAULT_SIZE
    return export_model(model, out_dir, direction, formats, height, width, opset, default_size)


def export_model(
    model: GANModule,
    out_dir: str | Path,
    direction: str | None = None,
    formats: Sequence[Format] = DEFAULT_FORMATS,
    height: int | None = None,
    width: int | None = None,
    opset: int | None = None,
    default_size: int = DEFAULT_SIZE,
) -> ExportReport:
    """Export the inference generators of `model` (copies, in eval mode) to `out_dir` and check the files; the
    arguments are `export_generator`'s, and `default_size` is the parity inputs' height and width by default."""
    check_formats(formats)
    directions = select_directions(model, direction)
    h = default_size if height is None else height
    size = (h, h if width is None else width)
    training = model.training
    try:
        exports = [prepare(model.eval(), d, size, explicit=height is not None or width is not None) for d in directions]
    finally:
        model.train(training)
    artifacts = {(fmt, e.direction): _build(fmt, e, opset) for e in exports for fmt in formats}  # before any write
    report = ExportReport()
    for (fmt, name), artifact in artifacts.items():
        path = Path(out_dir) / f"{name}{FORMATS[fmt]}"
        atomic_write(path, lambda tmp, fmt=fmt, artifact=artifact: _save(fmt, artifact, tmp))
        report.files.append(path)
    for e in exports:
        report.signatures[e.direction] = _signature(e)
        for fmt in formats:
            report.checks += check_parity(fmt, e, Path(out_dir) / f"{e.direction}{FORMATS[fmt]}", opset)
    return report


def check_formats(formats: Sequence[str]) -> None:
    """Fail unless `formats` are known and the packages they need are installed."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown export format {unknown or formats}; valid formats: {', '.join(FORMATS)}")
    missing = [p for p in ONNX_PACKAGES if "onnx" in formats and importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(
            f"ONNX export needs {', '.join(missing)}: pip install 'lit_gan[export]' (or export --formats pt2)"
        )


def select_directions(model: GANModule, direction: str | None) -> list[str]:
    """The directions to export: `direction`, or all of the model's (its `export_names()`)."""
    valid = list(model.export_names())
    if direction is None:
        return valid
    if direction not in valid:
        raise ExportError(f"unknown direction {direction!r} for {type(model).__name__}; valid: {', '.join(valid)}")
    return [direction]


def default_out_dir(ckpt_path: Path) -> Path:
    """`<run folder>/export`, the run folder holding `checkpoints/`; beside the checkpoint when it is elsewhere."""
    folder = ckpt_path.resolve().parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "export"


def prepare(model: GANModule, direction: str, size: tuple[int, int], explicit: bool = False) -> GeneratorExport:
    """An inference copy of `direction`'s generator with its inputs. `size` (H, W) is rounded up to the generator's
    size multiple, or, when the user gave it (`explicit`), must be a multiple already."""
    net = copy.deepcopy(model.translator(direction)).requires_grad_(False)
    _replace(net, lambda m: isinstance(m, nn.SyncBatchNorm), _plain_batch_norm)  # the same in eval mode, scriptable
    rng = torch.Generator().manual_seed(0)
    channels = net.nz if isinstance(net, LatentGenerator) else first_conv(net).in_channels  # noise or image channels
    if isinstance(net, LatentGenerator):  # from noise: (B, nz)
        inputs = [(torch.randn(b, channels, generator=rng),) for b in (2, 3)]
        return GeneratorExport(direction, net, inputs[0], inputs, None)
    m = net.size_multiple if isinstance(net, SizedNetwork) else 1
    if explicit and (min(size) < 1 or size[0] % m or size[1] % m):
        raise ExportError(
            f"height and width must be positive multiples of {m} for {type(net).__name__}, got {size[0]}x{size[1]}"
        )
    h, w = (max(-(-s // m), 2) * m for s in size)  # rounded up to the multiple, at least two (see dynamic_dims)
    shapes = [(2, channels, h, w), (1, channels, h + m, w + 2 * m)]  # the second: other batch, height and width
    inputs = [(torch.rand(shape, generator=rng) * 2 - 1,) for shape in shapes]  # images in [-1, 1]
    example: tuple[Tensor, ...] = (torch.zeros(2, channels, h, w),)
    if isinstance(net, StyleConditioned):  # and a style code per image
        inputs = [(x, torch.randn(len(x), net.style_dim, generator=rng)) for (x,) in inputs]
        example += (torch.zeros(2, net.style_dim),)
    return GeneratorExport(direction, net, example, inputs, m)


def _signature(e: GeneratorExport) -> str:
    """What the exported files take and return, for the user."""
    if e.multiple is None:
        with torch.no_grad():
            _, c_out, height, width = e.net(*e.example).shape
        return f"(B, {e.example[0].shape[1]}) noise -> (B, {c_out}, {height}, {width}) images in [-1, 1]"
    c_out = getattr(e.net, "out_channels", None) or last_conv(e.net).out_channels  # a network's own word first
    dropout = "; dropout on: outputs vary from call to call" if e.stochastic else ""
    style = f" images and (B, {e.example[1].shape[1]}) style codes" if len(e.example) > 1 else ""
    return (
        f"(B, {e.example[0].shape[1]}, H, W){style} -> (B, {c_out}, H, W) images in [-1, 1], H and W multiples of "
        f"{e.multiple}, at least {2 * e.multiple}{dropout}"
    )


# -- building, saving and checking each format ---------------------------------------------------------------------


def _build(fmt: str, e: GeneratorExport, opset: int | None):
    if fmt == "pt2":
        return torch.export.export(e.net, e.example, dynamic_shapes=dynamic_dims(e))
    if fmt == "torchscript":
        return _quiet_jit(torch.jit.script, e.net)
    return onnx_program(_with_sampled_dropout(e.net), e, opset)


def _save(fmt: str, artifact, path: Path) -> None:
    if fmt == "pt2":
        with path.open("wb") as f:  # a file object: torch.export.save names a path's suffix if it is not .pt2
            torch.export.save(artifact, f)
    elif fmt == "torchscript":
        _quiet_jit(torch.jit.save, artifact, str(path))
    else:
        path.write_bytes(artifact.model_proto.SerializeToString())  # one self-contained file (weights < 2 GB)


def _quiet_jit(fn, *args):
    """Call a `torch.jit` function without its deprecation warning: TorchScript is the format asked for."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
        return fn(*args)


def dynamic_dims(e: GeneratorExport) -> tuple[dict[int, Dim], ...]:
    """torch.export's dynamic dimensions of each input: batch, and for image translators height and width in
    multiples of the generator's size multiple, at least two: torch.export specializes a size-1 dimension (H / m == 1),
    and the ExportedProgram refuses it. A style code's batch is the images'."""
    batch = Dim("batch")
    if e.multiple is None:
        return ({0: batch},)
    h, w = Dim("height", min=2), Dim("width", min=2)
    images = {0: batch, 2: h * e.multiple if e.multiple > 1 else h, 3: w * e.multiple if e.multiple > 1 else w}
    return (images, *({0: batch} for _ in e.example[1:]))


def onnx_program(net: nn.Module, e: GeneratorExport, opset: int | None):
    """`net` through torch.onnx's exporter (torch.export + onnxscript), with dynamic batch, height and width."""
    return torch.onnx.export(
        net,
        e.example,
        dynamo=True,
        dynamic_shapes=dynamic_dims(e),
        input_names=e.input_names,
        output_names=["output"],
        opset_version=opset,
        verbose=False,
    )


def _with_sampled_dropout(net: nn.Module) -> nn.Module:
    """`net`, or a copy of it whose active `nn.Dropout` layers are `SampledDropout`s."""
    if not any(_active_dropout(m) for m in net.modules()):
        return net
    net = copy.deepcopy(net)
    _replace(net, _active_dropout, lambda dropout: SampledDropout(dropout.p))
    return net


def _active_dropout(module: nn.Module) -> bool:
    return isinstance(module, nn.Dropout) and module.training and module.p > 0


def _plain_batch_norm(norm: nn.SyncBatchNorm) -> nn.BatchNorm2d:
    """The `BatchNorm2d` that a `SyncBatchNorm` equals outside training (TorchScript cannot compile the latter)."""
    plain = nn.BatchNorm2d(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    plain.load_state_dict(norm.state_dict())
    return plain.train(norm.training)


def _replace(net: nn.Module, match, make) -> None:
    """Replace, in place, each submodule `m` of `net` for which `match(m)` holds by `make(m)`."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if match(child):
                setattr(parent, name, make(child))


def check_parity(fmt: str, e: GeneratorExport, path: Path, opset: int | None = None) -> list[ParityCheck]:
    """Run the file at `path` on `e.inputs` and compare with PyTorch (see the module docstring on dropout)."""
    if fmt in ("pt2", "torchscript"):
        loaded = torch.export.load(path).module() if fmt == "pt2" else _quiet_jit(torch.jit.load, str(path), "cpu")
        note = "same seed (dropout on)" if e.stochastic else ""
        return [_compare(fmt, e, x, _seeded(e.net, x), _seeded(loaded, x), note) for x in e.inputs]
    import onnxruntime

    net, note = e.net, ""
    if e.stochastic:  # masks differ between runtimes: check the deterministic path on a dropout-off copy
        net = copy.deepcopy(e.net).eval()
        source = onnx_program(net, e, opset).model_proto.SerializeToString()
        note = "dropout off (the file samples dropout)"
    else:
        source = str(path)
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    feeds = [dict(zip(e.input_names, (t.numpy() for t in x), strict=True)) for x in e.inputs]
    outputs = [torch.from_numpy(session.run(None, feed)[0]) for feed in feeds]
    return [_compare(fmt, e, x, _seeded(net, x), out, note) for x, out in zip(e.inputs, outputs, strict=True)]


def _seeded(net, x: tuple[Tensor, ...]) -> Tensor:
    """net(*x) with the global generator seeded (the same dropout masks on every call), leaving its state as it was."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        return net(*x)


def _compare(
    fmt: str, e: GeneratorExport, x: tuple[Tensor, ...], expected: Tensor, actual: Tensor, note: str
) -> ParityCheck:
    shape = tuple(x[0].shape)
    if actual.shape != expected.shape:
        return ParityCheck(fmt, e.direction, shape, float("inf"), f"output shape {tuple(actual.shape)}")
    diff = float(np.abs(actual.numpy() - expected.numpy()).max())
    return ParityCheck(fmt, e.direction, shape, diff, note)


# -- command line ---------------------------------------------------------------------------------------------------


def export_command(
    checkpoint: Path,
    out: Path | None = None,
    direction: str | None = None,
    formats: list[Format] = list(DEFAULT_FORMATS),
    height: int | None = None,
    width: int | None = None,
    opset: int | None = None,
) -> int:
    """Export a checkpoint's inference generators (ExportedProgram .pt2, ONNX; TorchScript on request), checked.

    Args:
        checkpoint: a checkpoint written by `python -m lit_gan fit`.
        out: output folder (default: <run folder>/export).
        direction: the direction to export, e.g. AtoB (default: all the model's).
        formats: pt2 (torch.export's ExportedProgram), onnx, torchscript (legacy: torch.jit is deprecated).
        height: parity input height (default: the run's data.crop_size).
        width: parity input width (default: the height).
        opset: ONNX opset version (default: torch.onnx's).

    Returns:
        0 when every parity check passes, 1 when one fails.

    Raises:
        ExportError, CheckpointError: for a bad request, before anything is written.
    """
    report = export_generator(checkpoint, out, direction, formats, height, width, opset)
    print("\n".join(["wrote:", *(f"  {p}" for p in report.files)]))
    print("\n".join(["inputs and outputs:", *(f"  {d}: {s}" for d, s in report.signatures.items())]))
    print(f"parity against PyTorch (ok: max abs diff <= {TOLERANCE:g}):")
    print(report.table())
    if not report.ok:
        print("error: an exported file differs from PyTorch beyond the tolerance (see the table)", file=sys.stderr)
    return 0 if report.ok else 1
